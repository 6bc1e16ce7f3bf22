import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatLsn, parseLsn } from '../../src/cdc/lsn.js';
import { parsePgArray } from '../../src/cdc/pg-array.js';
import { decodePgoutput, PgoutputDecodeError, UNCHANGED_TOAST } from '../../src/cdc/pgoutput-decoder.js';
import { mapperFor } from '../../src/cdc/type-mapping.js';
import { fromPgError } from '../../src/cdc/errors.js';

/** Builds pgoutput messages byte by byte, as the walsender sends them. */
class Writer {
  private parts: Buffer[] = [];
  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    this.parts.push(Buffer.from(s), Buffer.from([0]));
    return this;
  }
  text(s: string): this {
    const b = Buffer.from(s);
    return this.u8(0x74).u32(b.length).raw(b);
  }
  raw(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  done(): Buffer {
    return Buffer.concat(this.parts);
  }
}

describe('pgoutput decoder', () => {
  it('decodes begin and commit with LSNs and times', () => {
    const micros = 1_000_000n * 86_400n; // 2000-01-02
    const begin = decodePgoutput(new Writer().u8(0x42).u64(0x1_0000_00ffn).u64(micros).u32(4242).done());
    expect(begin).toEqual({ tag: 'begin', commitLsn: 0x1_0000_00ffn, commitTime: 946_684_800_000 + 86_400_000, xid: 4242 });
    const commit = decodePgoutput(new Writer().u8(0x43).u8(0).u64(10n).u64(20n).u64(0n).done());
    expect(commit).toEqual({ tag: 'commit', commitLsn: 10n, endLsn: 20n, commitTime: 946_684_800_000 });
  });

  it('decodes relations and tuples with nulls, unchanged TOAST and text', () => {
    const rel = decodePgoutput(
      new Writer().u8(0x52).u32(16384).str('public').str('orders').u8(0x64).u16(2).u8(1).str('id').u32(23).u32(0xffffffff).u8(0).str('note').u32(25).u32(0xffffffff).done(),
    );
    expect(rel).toMatchObject({ tag: 'relation', oid: 16384, schema: 'public', table: 'orders', replicaIdentity: 'd' });
    expect(rel.tag === 'relation' && rel.columns).toEqual([
      { name: 'id', typeOid: 23, typeMod: -1, isKey: true },
      { name: 'note', typeOid: 25, typeMod: -1, isKey: false },
    ]);
    const update = decodePgoutput(new Writer().u8(0x55).u32(16384).u8(0x4b).u16(2).text('1').u8(0x6e).u8(0x4e).u16(2).text('2').u8(0x75).done());
    expect(update).toEqual({ tag: 'update', relation: 16384, kind: 'K', before: ['1', null], after: ['2', UNCHANGED_TOAST] });
    const del = decodePgoutput(new Writer().u8(0x44).u32(7).u8(0x4f).u16(1).text('é').done());
    expect(del).toEqual({ tag: 'delete', relation: 7, kind: 'O', before: ['é'] });
    const trunc = decodePgoutput(new Writer().u8(0x54).u32(2).u8(3).u32(5).u32(6).done());
    expect(trunc).toEqual({ tag: 'truncate', relations: [5, 6], cascade: true, restartIdentity: true });
  });

  it('rejects truncated and unknown messages with a decode error, never a crash', () => {
    const insert = new Writer().u8(0x49).u32(1).u8(0x4e).u16(1).text('hello').done();
    fc.assert(
      fc.property(fc.integer({ min: 1, max: insert.length - 1 }), (cut) => {
        expect(() => decodePgoutput(insert.subarray(0, cut))).toThrow(PgoutputDecodeError);
      }),
    );
    expect(() => decodePgoutput(Buffer.from([0x21]))).toThrow(/unknown message type/);
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        try {
          decodePgoutput(Buffer.from(bytes));
        } catch (err) {
          expect(err).toBeInstanceOf(PgoutputDecodeError);
        }
      }),
    );
  });
});

describe('type mapping', () => {
  it('maps text output to JSON without losing precision', () => {
    expect(mapperFor(20)('9223372036854775807')).toBe('9223372036854775807');
    expect(mapperFor(1700)('-0.000000000000000000001')).toBe('-0.000000000000000000001');
    expect(mapperFor(23)('-5')).toBe(-5);
    expect(mapperFor(701)('Infinity')).toBe('Infinity');
    expect(mapperFor(701)('1.5e-300')).toBe(1.5e-300);
    expect(mapperFor(16)('f')).toBe(false);
    expect(mapperFor(17)('\\xdeadbeef')).toBe(Buffer.from('deadbeef', 'hex').toString('base64'));
    expect(mapperFor(1184)('2024-01-02 03:04:05+00')).toBe('2024-01-02T03:04:05Z');
    expect(mapperFor(1184)('2024-01-02 03:04:05.25+05:30')).toBe('2024-01-02T03:04:05.25+05:30');
    expect(mapperFor(1184)('infinity')).toBe('infinity');
    expect(mapperFor(1114)('2024-01-02 03:04:05.000001')).toBe('2024-01-02T03:04:05.000001');
    expect(mapperFor(1082)('2024-01-02')).toBe('2024-01-02');
    expect(mapperFor(3802)('{"a": [1, null]}')).toEqual({ a: [1, null] });
    expect(mapperFor(1016)('{1,NULL,9007199254740993}')).toEqual(['1', null, '9007199254740993']);
    expect(mapperFor(99999, new Map([[99999, { name: '_mood' }]]))('{sad,"very happy"}')).toEqual(['sad', 'very happy']);
    expect(mapperFor(99998)('whatever')).toBe('whatever');
  });

  it('parses any array literal PostgreSQL prints back to its elements', () => {
    const quote = (s: string | null): string => (s === null ? 'NULL' : `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`);
    fc.assert(
      fc.property(fc.array(fc.array(fc.option(fc.string(), { nil: null }), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }), (rows) => {
        const width = rows[0]!.length;
        const rect = rows.map((r) => Array.from({ length: width }, (_, i) => r[i] ?? null));
        const literal = `{${rect.map((r) => `{${r.map(quote).join(',')}}`).join(',')}}`;
        expect(parsePgArray(literal, (t) => t)).toEqual(rect);
      }),
    );
    expect(parsePgArray('[0:1]={1,2}', Number)).toEqual([1, 2]);
    expect(parsePgArray('{}', Number)).toEqual([]);
    expect(() => parsePgArray('{1,2', Number)).toThrow();
  });
});

describe('LSN', () => {
  it('round-trips X/Y text', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), (lsn) => {
        expect(parseLsn(formatLsn(lsn))).toBe(lsn);
      }),
    );
    expect(formatLsn(0x16_B374_8n)).toBe('0/16B3748');
    expect(() => parseLsn('nope')).toThrow();
  });
});

describe('PostgreSQL error mapping', () => {
  const pgError = (code: string, message: string): Error => Object.assign(new Error(message), { code });
  it('gives each failure its stable code', () => {
    expect(fromPgError(pgError('55006', 'replication slot "s" is active for PID 12'), { slot: 's' }).code).toBe('CDC_SLOT_IN_USE');
    // A slot past max_slot_wal_keep_size: PostgreSQL 15's text, then 16's.
    expect(fromPgError(pgError('55000', 'cannot read from logical replication slot "s"'), { slot: 's' }).code).toBe('CDC_SLOT_INVALIDATED');
    expect(fromPgError(pgError('55000', 'can no longer get changes from replication slot "s"'), { slot: 's' }).code).toBe('CDC_SLOT_INVALIDATED');
    expect(fromPgError(pgError('42501', 'must be superuser or replication role to start walsender'), { slot: 's', user: 'app' }).message).toMatch(/ALTER ROLE app REPLICATION/);
    expect(fromPgError(pgError('55000', 'logical decoding requires wal_level >= logical'), { slot: 's' }).code).toBe('CDC_WAL_LEVEL');
    expect(fromPgError(Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }), { slot: 's' }).code).toBe('CDC_CONNECTION');
  });
});

describe('envelope rows', () => {
  it('rowJson is JSON.stringify of row for any tuple', async () => {
    const { TableSchema } = await import('../../src/cdc/envelope.js');
    const columns = [
      { name: 'id', typeOid: 20, typeMod: -1, isKey: true },
      { name: 'n "quoted"', typeOid: 23, typeMod: -1, isKey: false },
      { name: 'j', typeOid: 3802, typeMod: -1, isKey: false },
      { name: 't', typeOid: 25, typeMod: -1, isKey: false },
      { name: 'arr', typeOid: 1009, typeMod: -1, isKey: false },
    ];
    const schema = new TableSchema(1, 'public', 'x', 'cdc.public.x', 'd', columns, ['id'], new Map());
    const cell = <T>(gen: fc.Arbitrary<T>) => fc.oneof(gen, fc.constant(null), fc.constant(UNCHANGED_TOAST));
    fc.assert(
      fc.property(
        fc.tuple(
          fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n }).map(String),
          cell(fc.integer().map(String)),
          cell(fc.json()),
          cell(fc.string()),
          cell(fc.array(fc.string({ unit: 'grapheme-ascii' }).filter((s) => !/[{},"\\\s]/.test(s) && s !== 'NULL' && s.length > 0)).map((a) => `{${a.join(',')}}`)),
        ),
        (tuple) => {
          const a: string[] = [];
          const b: string[] = [];
          expect(schema.rowJson(tuple, a)).toBe(JSON.stringify(schema.row(tuple, b)));
          expect(a).toEqual(b);
          expect(schema.rowJson(tuple, undefined, true)).toBe(JSON.stringify(schema.row(tuple, undefined, true)));
        },
      ),
    );
  });
});
