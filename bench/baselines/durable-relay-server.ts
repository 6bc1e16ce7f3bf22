/**
 * The least a durable WebSocket relay written in Node.js does per record, as a floor for Brook's
 * end-to-end latency on this machine: binary messages from producers are appended with one
 * O_DSYNC `writev` per group (one group in flight, the rest gathering behind it), then each
 * producer gets a 4-byte ack per message and the consumers one message holding the group.
 * Nothing else: no framing, offsets, idempotence, flow control, limits, auth or recovery.
 *
 * Run as a child of the bench: `durable-relay-server.ts <port> <file>`; prints "ready" once
 * listening. Producers connect to /produce, consumers to /consume.
 */
import { closeSync, constants, openSync, writev } from 'node:fs';
import { WebSocketServer, type WebSocket } from 'ws';

const port = Number(process.argv[2]);
const file = process.argv[3];
if (!Number.isInteger(port) || file === undefined) throw new Error('usage: durable-relay-server.ts <port> <file>');

const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_DSYNC);
const ACK = Buffer.from([1, 0, 0, 0]);
/** Messages wait here while a group is on its way to the disk; past the bound producers are cut off. */
const MAX_PENDING_BYTES = 64 * 1024 * 1024;
const consumers = new Set<WebSocket>();
let pending: { from: WebSocket; data: Buffer }[] = [];
let pendingBytes = 0;
let position = 0;
let writing = false;

function flush(): void {
  if (writing || pending.length === 0) return;
  const group = pending;
  pending = [];
  pendingBytes = 0;
  writing = true;
  const buffers = group.map((m) => m.data);
  writev(fd, buffers, position, (err, written) => {
    if (err) throw err;
    writing = false;
    position += written;
    for (const m of group) m.from.send(ACK);
    const pushed = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
    for (const c of consumers) c.send(pushed);
    flush();
  });
}

const server = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false });
server.on('connection', (ws, req) => {
  if (req.url === '/consume') {
    consumers.add(ws);
    ws.on('close', () => consumers.delete(ws));
    return;
  }
  ws.on('message', (data: Buffer) => {
    if (pendingBytes + data.length > MAX_PENDING_BYTES) return ws.terminate();
    pending.push({ from: ws, data });
    pendingBytes += data.length;
    flush();
  });
});
server.on('listening', () => process.stdout.write('ready\n'));
process.on('SIGTERM', () => {
  server.close();
  closeSync(fd);
  process.exit(0);
});
