import { StringDecoder } from 'node:string_decoder';

/**
 * Lines of a byte stream, pulled one at a time: the stream is read only as fast as lines are
 * consumed, so memory stays at one chunk plus one line. A line longer than `maxLineBytes`
 * (counted in UTF-16 units, close enough to bytes for a bound) is an error rather than a buffer
 * that grows without end. `\r\n` endings and a leading byte-order mark are accepted.
 */
export async function* readLines(input: AsyncIterable<Buffer | string>, maxLineBytes: number): AsyncGenerator<string> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let lineNo = 0;
  let first = true;
  const finish = (line: string): string => {
    lineNo++;
    return line.endsWith('\r') ? line.slice(0, -1) : line;
  };
  for await (const chunk of input) {
    let text = carry + (typeof chunk === 'string' ? chunk : decoder.write(chunk));
    if (first && text.length > 0) {
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      first = false;
    }
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      if (nl - start > maxLineBytes) throw new Error(`line ${lineNo + 1} is longer than ${maxLineBytes} bytes`);
      yield finish(text.slice(start, nl));
      start = nl + 1;
    }
    carry = text.slice(start);
    if (carry.length > maxLineBytes) throw new Error(`line ${lineNo + 1} is longer than ${maxLineBytes} bytes`);
  }
  carry += decoder.end();
  if (carry.length > 0) yield finish(carry);
}
