/** Signs test tokens: HS256 with a shared secret, RS256 with a generated key pair and its JWKS. */
import { exportJWK, generateKeyPair, SignJWT, type JSONWebKeySet, type JWTPayload } from 'jose';

export const SECRET = 'a-test-secret-that-is-long-enough-for-hs256';

export interface TokenOptions {
  /** Seconds since the epoch, or a jose time span (`'1h'`, `'-1h'`). @defaultValue '1h' */
  readonly exp?: number | string;
  /** @defaultValue SECRET */
  readonly secret?: string;
}

export async function hs256(claims: JWTPayload, options: TokenOptions = {}): Promise<string> {
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setIssuedAt()
    .setExpirationTime(options.exp ?? '1h')
    .sign(new TextEncoder().encode(options.secret ?? SECRET));
}

export const bearer = (token: string): Record<string, string> => ({ authorization: `Bearer ${token}` });

export interface RsaSigner {
  readonly jwks: JSONWebKeySet;
  sign(claims: JWTPayload, options?: { readonly exp?: number | string }): Promise<string>;
}

/** A fresh RS256 key pair; `jwks` holds its public half under `kid`. */
export async function rs256Signer(kid = 'test-key'): Promise<RsaSigner> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return {
    jwks: { keys: [jwk] },
    sign: (claims, options = {}) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid })
        .setIssuedAt()
        .setExpirationTime(options.exp ?? '1h')
        .sign(privateKey),
  };
}
