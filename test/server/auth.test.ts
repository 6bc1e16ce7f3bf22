import { createServer as createHttpServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ANONYMOUS,
  AuthUnavailableError,
  authorize,
  bindExposure,
  createAuthenticator,
  ForbiddenError,
  InsecureBindError,
  isLoopbackHost,
  matchesTopic,
  UnauthorizedError,
} from '../../src/server/auth/index.js';
import { tempDir } from '../helpers/temp-dir.js';
import { runCli, startCli } from '../cli/run-cli.js';
import { call, codeOf, setup, type Answer, type TestServer } from './setup.js';
import { bearer, hs256, rs256Signer, SECRET } from './tokens.js';

const messageOf = (answer: Answer): string => (answer.body as { error: { message: string } }).error.message;

describe('topic patterns', () => {
  it('matches * across any run of characters, never reaching __ topics', () => {
    expect(matchesTopic('*', 'orders')).toBe(true);
    expect(matchesTopic('orders.*', 'orders.eu')).toBe(true);
    expect(matchesTopic('orders.*', 'orders.eu.v2')).toBe(true);
    expect(matchesTopic('orders.*', 'orders')).toBe(false);
    expect(matchesTopic('orders.*', 'ordersX')).toBe(false);
    expect(matchesTopic('*.audit', 'billing.audit')).toBe(true);
    expect(matchesTopic('a*b*c', 'aXXbYYc')).toBe(true);
    expect(matchesTopic('a*b*c', 'aXXbYY')).toBe(false);
    expect(matchesTopic('orders', 'orders')).toBe(true);
    expect(matchesTopic('orders', 'orders2')).toBe(false);
    expect(matchesTopic('*', '__consumer_offsets')).toBe(false);
    expect(matchesTopic('__*', '__consumer_offsets')).toBe(true);
  });

  it('stays fast on patterns with many stars', () => {
    const pattern = `${'*a'.repeat(100)}*b`;
    const topic = 'a'.repeat(249);
    expect(matchesTopic(pattern, topic)).toBe(false);
  });
});

describe('binding policy', () => {
  it('knows loopback addresses', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
      expect(isLoopbackHost(host), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.2', 'example.com', '::2']) {
      expect(isLoopbackHost(host), host).toBe(false);
    }
  });

  it('refuses a reachable address without auth unless told to be insecure', () => {
    expect(bindExposure('127.0.0.1', false, false)).toBe('local-open');
    expect(bindExposure('0.0.0.0', true, false)).toBe('authenticated');
    expect(() => bindExposure('0.0.0.0', false, false)).toThrow(InsecureBindError);
    expect(bindExposure('0.0.0.0', false, true)).toBe('exposed-open');
  });
});

describe('authenticator', () => {
  it('is off without a secret or key set: everyone is the anonymous principal', async () => {
    const auth = createAuthenticator();
    expect(auth.enabled).toBe(false);
    await expect(auth.authenticate(undefined)).resolves.toBe(ANONYMOUS);
    expect(() => authorize(ANONYMOUS, 'write', 'anything')).not.toThrow();
    expect(() => authorize(ANONYMOUS, 'read', '__consumer_offsets')).not.toThrow();
  });

  it('takes a header value or a bare token (WebSocket ?token=)', async () => {
    const auth = createAuthenticator({ secret: SECRET });
    const token = await hs256({ sub: 'svc', permissions: [{ topics: 'a.*', actions: ['read'] }], tenant: 't1', tier: 'premium' });
    const expected = {
      subject: 'svc',
      anonymous: false,
      admin: false,
      permissions: [{ topics: 'a.*', actions: ['read'] }],
      tenant: 't1',
      tier: 'premium',
      expiresAt: expect.any(Number) as unknown,
    };
    await expect(auth.authenticate(`Bearer ${token}`)).resolves.toEqual(expected);
    await expect(auth.authenticate(`bearer  ${token}`)).resolves.toEqual(expected);
    await expect(auth.authenticate(token)).resolves.toEqual(expected);
    await expect(auth.authenticate(`Basic ${token}`)).rejects.toThrow(UnauthorizedError);
    await expect(auth.authenticate(null)).rejects.toThrow(UnauthorizedError);
    await expect(auth.authenticate('')).rejects.toThrow(UnauthorizedError);
    await expect(auth.authenticate('x'.repeat(9000))).rejects.toThrow(UnauthorizedError);
  });

  it('refuses malformed permission claims', async () => {
    const auth = createAuthenticator({ secret: SECRET });
    for (const permissions of [
      [{ topics: 'orders/*', actions: ['read'] }],
      [{ topics: '*', actions: ['delete'] }],
      'all',
    ]) {
      const token = await hs256({ permissions });
      await expect(auth.authenticate(token)).rejects.toMatchObject({ code: 'UNAUTHORIZED' });
    }
  });

  it('checks exp against an injected clock, and issuer and audience when configured', async () => {
    const now = Date.now();
    const token = await hs256({ iss: 'https://id.example', aud: 'brook' }, { exp: Math.floor(now / 1000) + 60 });
    const at = (ms: number) => createAuthenticator({ secret: SECRET, now: () => ms });
    await expect(at(now).authenticate(token)).resolves.toMatchObject({ anonymous: false });
    await expect(at(now + 120_000).authenticate(token)).rejects.toThrow(/expired/);
    const strict = createAuthenticator({ secret: SECRET, issuer: 'https://id.example', audience: 'brook' });
    await expect(strict.authenticate(token)).resolves.toMatchObject({ anonymous: false });
    const otherIssuer = createAuthenticator({ secret: SECRET, issuer: 'https://evil.example' });
    await expect(otherIssuer.authenticate(token)).rejects.toThrow(UnauthorizedError);
  });

  it('refuses a configuration that could not be safe', () => {
    expect(() => createAuthenticator({ secret: 'short' })).toThrow(/at least 32 bytes/);
    expect(() => createAuthenticator({ jwks: new URL('http://keys.example.com/jwks.json') })).toThrow(/https/);
    expect(() => createAuthenticator({ jwks: new URL('http://127.0.0.1:9/jwks.json') })).not.toThrow();
  });

  it('answers AUTH_UNAVAILABLE when a remote key set cannot be fetched', async () => {
    const signer = await rs256Signer();
    const auth = createAuthenticator({ jwks: new URL('http://127.0.0.1:1/jwks.json') });
    const err: unknown = await auth.authenticate(await signer.sign({})).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthUnavailableError);
    expect(err).toMatchObject({ code: 'AUTH_UNAVAILABLE' });
  });

  it('raises errors with stable codes and class names', () => {
    const err = (() => {
      try {
        authorize({ subject: 'x', anonymous: false, admin: false, permissions: [] }, 'read', 'orders');
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(err).toBeInstanceOf(ForbiddenError);
    expect(err).toMatchObject({ name: 'ForbiddenError', code: 'FORBIDDEN' });
  });
});

describe('HTTP access control (HS256)', () => {
  let t: TestServer;
  let admin: Record<string, string>;
  let teamA: Record<string, string>;
  let nobody: Record<string, string>;

  beforeAll(async () => {
    t = await setup({ auth: { secret: SECRET } });
    admin = bearer(await hs256({ sub: 'ops', admin: true, permissions: [{ topics: '*', actions: ['read', 'write'] }] }));
    teamA = bearer(await hs256({ sub: 'team-a', permissions: [{ topics: 'team-a.*', actions: ['read', 'write'] }] }));
    nobody = bearer(await hs256({ sub: 'nobody' }));
    for (const name of ['team-a.orders', 'team-b.secret']) {
      expect((await call(t.url, 'POST', '/v1/topics', { name }, admin)).status).toBe(201);
    }
    await call(t.url, 'POST', '/v1/topics/team-b.secret/records', { records: [{ value: 'classified' }] }, admin);
  });
  afterAll(async () => {
    await t.cleanup();
  });

  it('answers 401 without a token, with WWW-Authenticate; health probes stay public', async () => {
    for (const [method, path] of [
      ['GET', '/v1/topics'],
      ['GET', '/v1/topics/team-a.orders'],
      ['POST', '/v1/topics/team-a.orders/records'],
      ['GET', '/v1/groups'],
      ['GET', '/metrics'],
    ] as const) {
      const answer = await call(t.url, method, path, method === 'POST' ? { records: [{ value: 1 }] } : undefined);
      expect(answer.status, `${method} ${path}`).toBe(401);
      expect(codeOf(answer)).toBe('UNAUTHORIZED');
      expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer/);
    }
    expect((await call(t.url, 'GET', '/healthz')).status).toBe(200);
    expect((await call(t.url, 'GET', '/readyz')).status).toBe(200);
  });

  it('answers 401 to a bad signature, a tampered payload, an expired token and an unsigned one', async () => {
    const forged = await hs256({ admin: true }, { secret: 'another-secret-that-is-also-long-enough!' });
    const good = await hs256({ sub: 'x', permissions: [{ topics: 'team-a.*', actions: ['read'] }] });
    const [header, , signature] = good.split('.');
    const escalated = Buffer.from(JSON.stringify({ sub: 'x', admin: true, permissions: [{ topics: '*', actions: ['read'] }] })).toString(
      'base64url',
    );
    const tampered = `${header}.${escalated}.${signature}`;
    const expired = await hs256({ admin: true }, { exp: Math.floor(Date.now() / 1000) - 3600 });
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from('{"admin":true}').toString('base64url')}.`;
    for (const [what, token] of [
      ['forged', forged],
      ['tampered', tampered],
      ['expired', expired],
      ['unsigned', unsigned],
      ['garbage', 'not-a-jwt'],
    ] as const) {
      const answer = await call(t.url, 'GET', '/v1/topics', undefined, bearer(token));
      expect(answer.status, what).toBe(401);
      expect(codeOf(answer), what).toBe('UNAUTHORIZED');
    }
    const answer = await call(t.url, 'GET', '/v1/topics', undefined, bearer(expired));
    expect(messageOf(answer)).toMatch(/expired/);
  });

  it('lists only the topics the caller may read', async () => {
    const listed = (who: Record<string, string>) =>
      call(t.url, 'GET', '/v1/topics', undefined, who).then((a) => (a.body as { topics: { name: string }[] }).topics.map((x) => x.name));
    expect(await listed(teamA)).toEqual(['team-a.orders']);
    expect(await listed(nobody)).toEqual([]);
    expect((await listed(admin)).sort()).toEqual(['team-a.orders', 'team-b.secret']);
  });

  it('refuses a forbidden topic the same way whether it exists or not', async () => {
    const requests = (topic: string) =>
      [
        ['GET', `/v1/topics/${topic}`, undefined],
        ['GET', `/v1/topics/${topic}/partitions/0/records`, undefined],
        ['GET', `/v1/topics/${topic}/partitions/7/records?offset=99`, undefined],
        ['POST', `/v1/topics/${topic}/records`, { records: [{ value: 'x' }] }],
        ['GET', `/v1/groups/g1/offsets?topic=${topic}`, undefined],
        ['POST', '/v1/groups/g1/offsets', { offsets: [{ topic, partition: 0, offset: 0 }] }],
        ['POST', '/v1/groups/g1/members', { topics: [topic] }],
      ] as const;
    const known = requests('team-b.secret');
    // Same length as the known name, so even Content-Length cannot tell them apart.
    const unknown = requests('team-b.absent');
    for (let i = 0; i < known.length; i++) {
      const [method, path, body] = known[i]!;
      const a = await call(t.url, method, path, body, teamA);
      const [, otherPath, otherBody] = unknown[i]!;
      const b = await call(t.url, method, otherPath, otherBody, teamA);
      expect(a.status, `${method} ${path}`).toBe(403);
      expect(b.status, `${method} ${otherPath}`).toBe(403);
      expect(codeOf(a)).toBe('FORBIDDEN');
      expect(messageOf(a).replace('team-b.secret', 'T')).toBe(messageOf(b).replace('team-b.absent', 'T'));
      expect(Object.fromEntries([...a.headers].filter(([k]) => k !== 'date'))).toEqual(
        Object.fromEntries([...b.headers].filter(([k]) => k !== 'date')),
      );
    }
    // The forbidden produce did not auto-create the unknown topic, nor write to the known one.
    await expect(t.engine.describeTopic('team-b.absent')).rejects.toMatchObject({ code: 'TOPIC_NOT_FOUND' });
    expect((await t.engine.watermarks('team-b.secret', 0)).highWatermark).toBe(1);
  });

  it('lets a caller use its own topics, and separates read from write', async () => {
    const produced = await call(t.url, 'POST', '/v1/topics/team-a.orders/records', { records: [{ value: 'mine' }] }, teamA);
    expect(produced.status).toBe(200);
    const read = await call(t.url, 'GET', '/v1/topics/team-a.orders/partitions/0/records', undefined, teamA);
    expect(read.body).toMatchObject({ records: [{ value: 'mine' }] });
    // Producing to an unknown topic the caller may write creates it (auto-create is on).
    expect((await call(t.url, 'POST', '/v1/topics/team-a.new/records', { records: [{ value: 1 }] }, teamA)).status).toBe(200);

    const writer = bearer(await hs256({ permissions: [{ topics: 'team-a.*', actions: ['write'] }] }));
    expect((await call(t.url, 'POST', '/v1/topics/team-a.orders/records', { records: [{ value: 2 }] }, writer)).status).toBe(200);
    expect((await call(t.url, 'GET', '/v1/topics/team-a.orders/partitions/0/records', undefined, writer)).status).toBe(403);
    expect((await call(t.url, 'GET', '/v1/topics/team-a.orders', undefined, writer)).status).toBe(403);

    // `*` does not reach Brook's own topics.
    expect((await call(t.url, 'GET', '/v1/topics/__consumer_offsets/partitions/0/records', undefined, admin)).status).toBe(403);
  });

  it('filters committed offsets to readable topics', async () => {
    await t.engine.commitOffsets('shared', [
      { topic: 'team-a.orders', partition: 0, offset: 1 },
      { topic: 'team-b.secret', partition: 0, offset: 1 },
    ]);
    const mine = await call(t.url, 'GET', '/v1/groups/shared/offsets', undefined, teamA);
    expect((mine.body as { offsets: { topic: string }[] }).offsets.map((o) => o.topic)).toEqual(['team-a.orders']);
    const all = await call(t.url, 'GET', '/v1/groups/shared/offsets', undefined, admin);
    expect((all.body as { offsets: unknown[] }).offsets).toHaveLength(2);

    // Joining with readable topics works; heartbeat and leave need only the member id.
    const joined = await call(t.url, 'POST', '/v1/groups/a-consumers/members', { topics: ['team-a.orders'] }, teamA);
    expect(joined.status).toBe(200);
    const member = (joined.body as { member_id: string }).member_id;
    expect((await call(t.url, 'POST', `/v1/groups/a-consumers/members/${member}/heartbeat`, undefined, teamA)).status).toBe(200);
    expect((await call(t.url, 'POST', '/v1/groups/a-consumers/offsets', { offsets: [{ topic: 'team-a.orders', partition: 0, offset: 1 }] }, teamA)).status).toBe(204);
    expect((await call(t.url, 'DELETE', `/v1/groups/a-consumers/members/${member}`, undefined, teamA)).status).toBe(204);
  });

  it('requires admin to create and delete topics, list and describe groups, and read metrics', async () => {
    for (const [method, path, body] of [
      ['POST', '/v1/topics', { name: 'team-a.created' }],
      ['DELETE', '/v1/topics/team-a.orders', undefined],
      ['DELETE', '/v1/topics/team-a.never-existed', undefined],
      ['GET', '/v1/groups', undefined],
      ['GET', '/v1/groups/shared', undefined],
      ['GET', '/metrics', undefined],
    ] as const) {
      const answer = await call(t.url, method, path, body, teamA);
      expect(answer.status, `${method} ${path}`).toBe(403);
      expect(codeOf(answer)).toBe('FORBIDDEN');
    }
    expect(await t.engine.listTopics().then((ts) => ts.map((x) => x.name))).not.toContain('team-a.created');
    expect((await call(t.url, 'GET', '/v1/topics/team-a.orders', undefined, teamA)).status).toBe(200);

    expect((await call(t.url, 'POST', '/v1/topics', { name: 'team-a.created' }, admin)).status).toBe(201);
    expect((await call(t.url, 'GET', '/v1/groups', undefined, admin)).status).toBe(200);
    expect((await call(t.url, 'GET', '/v1/groups/shared', undefined, admin)).status).toBe(200);
    expect((await fetch(`${t.url}/metrics`, { headers: admin })).status).toBe(200);
    expect((await call(t.url, 'DELETE', '/v1/topics/team-a.created', undefined, admin)).status).toBe(204);
  });
});

describe('HTTP access control (RS256 with a JWKS)', () => {
  it('verifies tokens against a local key set', async () => {
    const signer = await rs256Signer('k1');
    const stranger = await rs256Signer('k1');
    const t = await setup({ auth: { jwks: signer.jwks } });
    try {
      const reader = bearer(await signer.sign({ permissions: [{ topics: '*', actions: ['read'] }] }));
      expect((await call(t.url, 'GET', '/v1/topics', undefined, reader)).status).toBe(200);
      // Same kid, other key: the signature does not verify.
      const forged = bearer(await stranger.sign({ admin: true }));
      expect((await call(t.url, 'GET', '/v1/topics', undefined, forged)).status).toBe(401);
      // Unknown kid, and HS256 when only a key set is configured.
      const otherKid = bearer(await (await rs256Signer('k2')).sign({}));
      expect((await call(t.url, 'GET', '/v1/topics', undefined, otherKid)).status).toBe(401);
      expect((await call(t.url, 'GET', '/v1/topics', undefined, bearer(await hs256({ admin: true })))).status).toBe(401);
      const expired = bearer(await signer.sign({ admin: true }, { exp: Math.floor(Date.now() / 1000) - 3600 }));
      expect((await call(t.url, 'GET', '/v1/topics', undefined, expired)).status).toBe(401);
    } finally {
      await t.cleanup();
    }
  });

  it('fetches the key set from a URL (loopback)', async () => {
    const signer = await rs256Signer('remote');
    let fetched = 0;
    const keys: Server = createHttpServer((_req, res) => {
      fetched++;
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(signer.jwks));
    });
    await new Promise<void>((resolve) => keys.listen(0, '127.0.0.1', resolve));
    const url = new URL(`http://127.0.0.1:${(keys.address() as AddressInfo).port}/.well-known/jwks.json`);
    const t = await setup({ auth: { jwks: url, secret: SECRET } });
    try {
      const admin = bearer(await signer.sign({ admin: true }));
      expect((await call(t.url, 'POST', '/v1/topics', { name: 'remote-keys' }, admin)).status).toBe(201);
      expect((await call(t.url, 'GET', '/v1/groups', undefined, admin)).status).toBe(200);
      expect(fetched).toBe(1); // cached
      // With both configured, HS256 tokens keep working.
      expect((await call(t.url, 'GET', '/v1/groups', undefined, bearer(await hs256({ admin: true })))).status).toBe(200);
    } finally {
      await t.cleanup();
      await new Promise((resolve) => keys.close(resolve));
    }
  });
});

describe('brook start with auth', () => {
  it('refuses to serve a non-loopback host without auth', async () => {
    const dir = await tempDir('brook-auth-start-');
    try {
      // Checked before anything is opened or bound: the process exits without listening.
      const result = await runCli(['start', '--host', '0.0.0.0', '--port', '0', '--data', dir.path], '', 20_000);
      expect(result.code).not.toBe(0);
      expect(result.code).not.toBeNull();
      expect(result.stderr).toContain('refusing to listen on 0.0.0.0 without authentication');
      expect(result.stdout).not.toContain('listening');
    } finally {
      await dir.remove();
    }
  });

  it('takes the secret from BROOK_AUTH_SECRET and quotas and keys from --config', async () => {
    const dir = await tempDir('brook-auth-start-');
    const signer = await rs256Signer('cfg');
    await writeFile(join(dir.path, 'jwks.json'), JSON.stringify(signer.jwks));
    await writeFile(
      join(dir.path, 'brook.json'),
      JSON.stringify({
        auth: { jwks: 'jwks.json' },
        quotas: { tiers: { regular: { records_per_second: 1 }, premium: { records_per_second: 1000 } } },
      }),
    );
    const server = startCli(
      ['start', '--port', '0', '--data', join(dir.path, 'data'), '--log-level', 'error', '--config', join(dir.path, 'brook.json')],
      { BROOK_AUTH_SECRET: SECRET },
    );
    try {
      const line = await server.waitForLine(/^brook listening on /);
      const url = /(http:\/\/\S+)/.exec(line)![1]!;
      expect((await call(url, 'GET', '/v1/topics')).status).toBe(401);
      const hsAdmin = bearer(await hs256({ sub: 'a', admin: true, permissions: [{ topics: '*', actions: ['write'] }] }));
      expect((await call(url, 'GET', '/v1/groups', undefined, hsAdmin)).status).toBe(200);
      const rsWriter = bearer(await signer.sign({ sub: 'b', permissions: [{ topics: '*', actions: ['write'] }] }));
      const records = { records: [{ value: 1 }, { value: 2 }] };
      expect((await call(url, 'POST', '/v1/topics/cfg/records', records, rsWriter)).status).toBe(200);
      // One record per second for the regular tier: the second batch is throttled.
      const throttled = await call(url, 'POST', '/v1/topics/cfg/records', records, rsWriter);
      expect(throttled.status).toBe(429);
      expect(Number(throttled.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    } finally {
      server.child.kill('SIGTERM');
      expect((await server.exited()).code).toBe(0);
      await dir.remove();
    }
  });
});
