/**
 * Server-to-client WebSocket text frames built once and written as-is to every subscriber's
 * socket (RFC 6455 §5.2: FIN + opcode 1, unmasked, 7/16/64-bit length). With permessage-deflate
 * off, `ws` writes its own frames synchronously, so raw frames never interleave with them.
 */
export function textFrame(payload: string): Buffer {
  const n = Buffer.byteLength(payload);
  const header = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  // Pooled: frames live only while a fan-out writes them (history keeps the data, not frames).
  const frame = Buffer.allocUnsafe(header + n);
  frame[0] = 0x81;
  if (header === 2) {
    frame[1] = n;
  } else if (header === 4) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(n / 2 ** 32), 2);
    frame.writeUInt32BE(n >>> 0, 6);
  }
  frame.write(payload, header, 'utf8');
  return frame;
}
