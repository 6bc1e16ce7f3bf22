/**
 * Parser of PostgreSQL's array text output: `{1,2,NULL}`, `{{1,2},{3,4}}`, `{"a b","c\"d"}`,
 * optionally prefixed by dimension bounds (`[0:1]={...}`). Elements are handed to `element`
 * (unquoted NULL becomes null). `delimiter` is `,` for every built-in type but `box` (`;`).
 */
export type ArrayValue = unknown[];

export function parsePgArray(text: string, element: (text: string) => unknown, delimiter = ','): ArrayValue {
  let i = 0;
  if (text.charCodeAt(0) === 0x5b /* [ */) {
    const eq = text.indexOf('=');
    if (eq === -1) throw new Error(`invalid array literal ${JSON.stringify(text.slice(0, 100))}`);
    i = eq + 1;
  }
  const parse = (): ArrayValue => {
    if (text[i] !== '{') throw new Error(`invalid array literal at ${i}: ${JSON.stringify(text.slice(0, 100))}`);
    i++;
    const out: unknown[] = [];
    if (text[i] === '}') {
      i++;
      return out;
    }
    for (;;) {
      const c = text[i];
      if (c === '{') {
        out.push(parse());
      } else if (c === '"') {
        i++;
        let s = '';
        for (;;) {
          const ch = text[i];
          if (ch === undefined) throw new Error('unterminated quoted array element');
          if (ch === '\\') {
            s += text[i + 1] ?? '';
            i += 2;
          } else if (ch === '"') {
            i++;
            break;
          } else {
            s += ch;
            i++;
          }
        }
        out.push(element(s));
      } else {
        let j = i;
        while (j < text.length && text[j] !== delimiter && text[j] !== '}') j++;
        const raw = text.slice(i, j);
        i = j;
        out.push(raw === 'NULL' ? null : element(raw));
      }
      const sep = text[i];
      i++;
      if (sep === '}') return out;
      if (sep !== delimiter) throw new Error(`invalid array literal at ${i - 1}: ${JSON.stringify(text.slice(0, 100))}`);
    }
  };
  return parse();
}
