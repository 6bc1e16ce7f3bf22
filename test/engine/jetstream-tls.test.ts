// The JetStream engine over TLS to a nats-server this test starts with a certificate from a CA it
// makes (openssl): trusted with `tls.caFile`, refused without it; and a clear error for a
// credentials file that cannot be read.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChildServer, freePort, isPortOpen } from '../../bench/lib/processes.js';
import { NATS_SERVER } from '../../bench/lib/nats-server.js';
import { JetStreamEngine } from '../../src/engine/jetstream/index.js';
import { requireNatsServer } from '../helpers/nats-cluster.js';
import { tempDir } from '../helpers/temp-dir.js';

const run = promisify(execFile);
const haveNats = requireNatsServer();

/** A CA and a server certificate for 127.0.0.1 signed by it. */
async function makeCertificates(dir: string): Promise<{ ca: string; cert: string; key: string }> {
  const ca = join(dir, 'ca.pem');
  const caKey = join(dir, 'ca-key.pem');
  const key = join(dir, 'server-key.pem');
  const csr = join(dir, 'server.csr');
  const cert = join(dir, 'server.pem');
  const ext = join(dir, 'san.ext');
  const openssl = (...args: string[]): Promise<unknown> => run('openssl', args);
  await openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', caKey, '-out', ca, '-days', '1', '-subj', '/CN=brook-test-ca');
  await openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', csr, '-subj', '/CN=127.0.0.1');
  await run('sh', ['-c', `printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ${ext}`]);
  await openssl('x509', '-req', '-in', csr, '-CA', ca, '-CAkey', caKey, '-CAcreateserial', '-out', cert, '-days', '1', '-extfile', ext);
  return { ca, cert, key };
}

describe.runIf(haveNats)('JetStream engine over TLS', () => {
  let dir: { path: string; remove: () => Promise<void> };
  let server: ChildServer;
  let url = '';
  let ca = '';

  beforeAll(async () => {
    dir = await tempDir('brook-nats-tls-');
    const certs = await makeCertificates(dir.path);
    ca = certs.ca;
    const port = await freePort();
    url = `nats://127.0.0.1:${port}`;
    ({ server } = await ChildServer.start({
      name: 'nats-server (tls)',
      command: NATS_SERVER,
      args: ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir.path, 'store'), '--tls', '--tlscert', certs.cert, '--tlskey', certs.key],
      ready: () => isPortOpen(port),
    }));
  }, 60_000);

  afterAll(async () => {
    await server?.stop();
    await dir?.remove();
  });

  it('connects with the CA and serves appends and reads', async () => {
    const engine = new JetStreamEngine({ servers: url, prefix: 'TLS', tls: { caFile: ca } });
    await engine.open();
    try {
      await engine.createTopic('secure', { partitions: 1 });
      await engine.append('secure', 0, [{ value: Buffer.from('over tls') }]);
      const read = await engine.read('secure', 0, 0);
      expect(read.records.map((r) => r.value?.toString())).toEqual(['over tls']);
    } finally {
      await engine.destroy();
    }
  });

  it('refuses a server whose certificate it cannot verify', async () => {
    const engine = new JetStreamEngine({ servers: url, prefix: 'TLS2', requestTimeoutMs: 2_000 });
    await expect(engine.open()).rejects.toMatchObject({ code: 'STORAGE_ERROR', message: expect.stringMatching(/certificate/i) });
  });

  it('says which credentials file it could not read', async () => {
    const missing = join(dir.path, 'nope.creds');
    const engine = new JetStreamEngine({ servers: url, prefix: 'TLS3', credsFile: missing, tls: { caFile: ca } });
    await expect(engine.open()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining(missing) });
  });

  it('needs both halves of a client certificate', async () => {
    const engine = new JetStreamEngine({ servers: url, prefix: 'TLS4', tls: { caFile: ca, certFile: ca } });
    await expect(engine.open()).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });
});
