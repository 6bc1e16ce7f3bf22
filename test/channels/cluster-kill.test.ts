/**
 * Two `brook start --engine jetstream --channels-cluster` processes: an SDK client subscribed on
 * node A (given both URLs) while a publisher streams through node B; A is killed with SIGKILL; the
 * client reconnects to B and recovers with no gap and no duplicate.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { RealtimeClient, type SubscribedInfo, type WebSocketConstructor } from '../../src/client/index.js';
import { startCli, type CliProcess } from '../cli/run-cli.js';
import { destroyChannelCluster } from '../helpers/channel-cluster.js';
import { requireService, SERVICES } from '../helpers/services.js';
import { eventually } from '../ws/setup.js';

const nats = `nats://127.0.0.1:${SERVICES.nats}`;
const natsUp = await requireService('nats');

describe.runIf(natsUp)('channel cluster: a Brook node killed with -9', () => {
  const prefix = `BK${randomBytes(5).toString('hex')}`;
  const procs: CliProcess[] = [];
  const clients: RealtimeClient[] = [];

  const startNode = async (): Promise<string> => {
    const cli = startCli(['start', '--port', '0', '--engine', 'jetstream', '--nats', nats, '--nats-prefix', prefix, '--channels-cluster', '--log-level', 'warn']);
    procs.push(cli);
    const line = await cli.waitForLine(/listening on http:\/\//);
    return /listening on (http:\/\/\S+)/.exec(line)![1]!;
  };
  const client = (url: string | string[]): RealtimeClient => {
    const c = new RealtimeClient({ url, WebSocket: WebSocket as unknown as WebSocketConstructor, reconnect: { baseMs: 20, capMs: 200 } });
    clients.push(c);
    return c;
  };

  afterAll(async () => {
    for (const c of clients) c.close();
    for (const p of procs) {
      p.child.kill('SIGTERM');
      await p.exited(15_000).catch(() => undefined);
    }
    await destroyChannelCluster(nats, prefix);
  }, 60_000);

  it('the client reconnects to the surviving node and recovers without gap or duplicate', async () => {
    const a = await startNode();
    const b = await startNode();
    const rt = client([a, b]);
    const got: number[] = [];
    const subs: SubscribedInfo[] = [];
    rt.subscribe<number>('chat:kill', (m) => got.push(m.data), { onSubscribed: (s) => subs.push(s) });
    await eventually(() => subs.length === 1, 'subscribed on A');
    // Published over HTTP on node B (the server's own publish path, not a client's rate limit).
    let sent = 0;
    let stop = false;
    const pumping = (async () => {
      while (!stop) {
        const res = await fetch(`${b}/v1/channels/chat:kill/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ data: sent }),
        });
        expect(res.status).toBe(200);
        sent++;
      }
    })();
    await eventually(() => got.length > 50, 'messages through node A');
    procs[0]!.child.kill('SIGKILL');
    await eventually(() => subs.length === 2, 'resubscribed on node B', 30_000);
    const at = got.length;
    await eventually(() => got.length > at + 100, 'messages through node B');
    stop = true;
    await pumping;
    await eventually(() => got.length === sent, `all ${sent} messages`);
    expect(got).toEqual([...Array(sent).keys()]);
    expect(subs[1]).toMatchObject({ recovered: true, resubscribed: true });
  }, 60_000);
});
