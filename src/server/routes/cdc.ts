/**
 * CDC administration over HTTP (docs/http-api.md, "CDC"): every source's status, and on-demand
 * snapshots (incremental by default) started and followed by id. Admin only: a status shows
 * the database's table names, and a snapshot re-appends whole tables.
 */
import { z } from 'zod';
import { CdcError, type CdcSource, type CdcSourceStatus, type SnapshotStatus } from '../../cdc/index.js';
import { requireAdmin } from '../auth/index.js';
import { json } from '../reply.js';
import type { RequestContext } from '../request-context.js';
import type { Router } from '../router.js';

/** What the routes use of a CDC source. */
export type CdcAdmin = Pick<CdcSource, 'name' | 'status' | 'startSnapshot' | 'snapshotStatus'>;

/** Tables named in one snapshot request. */
export const MAX_SNAPSHOT_TABLES = 100;

const snapshotRequest = z.strictObject({
  tables: z
    .array(z.string().regex(/^[^.\s]+\.[^.\s]+$/, 'use schema.table').max(200))
    .min(1)
    .max(MAX_SNAPSHOT_TABLES),
  /** @defaultValue 'incremental' */
  mode: z.enum(['incremental', 'blocking']).optional(),
});

export function cdcRoutes(router: Router, sources: readonly CdcAdmin[]): void {
  const byName = new Map(sources.map((s) => [s.name, s]));
  const source = (ctx: RequestContext): CdcAdmin => {
    requireAdmin(ctx.principal, 'CDC administration');
    const name = ctx.param('source');
    const found = byName.get(name);
    if (!found) throw new CdcError('CDC_SOURCE_NOT_FOUND', `no CDC source named ${JSON.stringify(name.slice(0, 100))}`);
    return found;
  };

  router.add('GET', '/v1/admin/cdc', (ctx) => {
    requireAdmin(ctx.principal, 'CDC administration');
    return json(200, { sources: sources.map((s) => statusWire(s.status())) });
  });

  router.add('GET', '/v1/admin/cdc/:source', (ctx) => json(200, statusWire(source(ctx).status())));

  router.add('POST', '/v1/admin/cdc/:source/snapshots', async (ctx) => {
    const target = source(ctx);
    const body = await ctx.body(snapshotRequest);
    const started = target.startSnapshot(body.tables, { mode: body.mode ?? 'incremental' });
    return {
      ...json(202, snapshotWire(started)),
      headers: { location: `/v1/admin/cdc/${encodeURIComponent(target.name)}/snapshots/${started.id}` },
    };
  });

  router.add('GET', '/v1/admin/cdc/:source/snapshots/:id', async (ctx) => {
    const target = source(ctx);
    return json(200, snapshotWire(await target.snapshotStatus(ctx.param('id'))));
  });
}

function statusWire(s: CdcSourceStatus): Record<string, unknown> {
  return {
    name: s.name,
    state: s.state,
    slot: s.slot,
    publication: s.publication,
    tables: s.tables,
    confirmed_lsn: s.confirmedLsn,
    slot_lag_bytes: s.slotLagBytes,
    last_error: s.lastError,
    snapshot: s.snapshot === null ? null : snapshotWire(s.snapshot),
  };
}

function snapshotWire(s: SnapshotStatus): Record<string, unknown> {
  return {
    id: s.id,
    mode: s.mode,
    state: s.state,
    table: s.table,
    chunks: s.chunks,
    rows: s.rows,
    tables: s.tables,
    error: s.error,
  };
}
