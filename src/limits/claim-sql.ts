/**
 * The limited claim: pending jobs of one kind with limits become active, never
 * past a limit, keys served round-robin. One short transaction; why it is exact
 * and why it is shaped this way: docs/design/flow-control.md.
 */
import type { Queryable, Sql } from '../db/client'
import { literalLimit } from '../db/literal'
import type { Tables } from '../db/tables'
import type { ClaimParams } from '../runs/sql/claim'
import { claimFromSlots, type KindLimits, type LimitedClaim } from './slot-claim-sql'

export type { LimitedClaim, ThrottleReason } from './slot-claim-sql'

/** How many slot rows beyond the batch size a claim takes: keys at a limit or with nothing due give nothing. */
const EXTRA_CANDIDATES = 2

/**
 * Claims up to `p.runIds.length` jobs of `kind` within its limits, in one
 * transaction of three or four statements:
 * 1. reads the limits and locks the first slot rows in turn order (least
 *    recently served first), SKIP LOCKED, so claimers spread over keys;
 * 2. with a kind-wide limit, locks the limits row (claims of the kind take turns);
 * 3. in a fresh snapshot, which sees every claim that held these locks before,
 *    counts each key's running jobs and rate window, claims within the room
 *    left, moves the keys it looked at to the back of the line and deletes the
 *    rows of keys with nothing pending or running.
 * Answers nothing when the kind has no limits (the plain claim takes it then).
 */
export function claimWithinLimits(sql: Sql, t: Tables, kind: string, p: ClaimParams): Promise<LimitedClaim> {
  return sql.begin((tx) => claimWithinLimitsIn(tx, t, kind, p))
}

/** claimWithinLimits' statements, in a transaction the caller opened (tests explain them in one they roll back). */
export async function claimWithinLimitsIn(
  tx: Queryable,
  t: Tables,
  kind: string,
  p: ClaimParams,
): Promise<LimitedClaim> {
  const none: LimitedClaim = { claimed: [], throttled: {}, reopensAt: null, more: false }
  const want = p.runIds.length
  const rows = await tx<(KindLimits & { key: string | null })[]>`
    select l.max_active, l.max_active_per_key, l.rate_limit, l.rate_seconds,
           l.rate_per_key_limit, l.rate_per_key_seconds, s.key
    from ${tx(t.limits)} l
    left join lateral (
      select s.key from ${tx(t.flowSlots)} s
      where s.kind = l.kind
      order by s.last_served_at nulls first, s.key
      limit ${literalLimit(tx, want + EXTRA_CANDIDATES)}
      for update skip locked
    ) s on true
    where l.kind = ${kind}`
  const [limits] = rows
  if (!limits) return none
  let keys = rows.flatMap((r) => (r.key === null ? [] : [r.key]))
  // Every row is held by another claimer (few keys, or a kind whose jobs have no
  // key): wait for one rather than answer "nothing" while work exists.
  if (keys.length === 0) keys = await slotWaitedFor(tx, t, kind)
  if (keys.length === 0) return none
  const kindWide = limits.max_active !== null || limits.rate_limit !== null
  if (kindWide) {
    const locked = await tx`select 1 from ${tx(t.limits)} where kind = ${kind} for update`
    if (locked.length === 0) return none
  }
  const result = await claimFromSlots(tx, t, kind, p, limits, keys)
  return { ...result, more: result.more && keys.length === want + EXTRA_CANDIDATES }
}

/** How many of the first slot rows a claimer that found all of them held may wait on. */
const WAIT_SPREAD = 16

/**
 * Locks one of the kind's first slot rows in turn order, waiting for it; [] when
 * the kind has none (or the row went meanwhile). Claimers that all waited on the
 * very first row queued behind each other one claim at a time, so each picks one
 * of the first WAIT_SPREAD at random (the first when there are fewer).
 */
async function slotWaitedFor(tx: Queryable, t: Tables, kind: string): Promise<string[]> {
  const pick = Math.floor(Math.random() * WAIT_SPREAD)
  const rows = await tx<{ key: string }[]>`
    with first as materialized (
      select key from ${tx(t.flowSlots)} where kind = ${kind}
      order by last_served_at nulls first, key limit ${literalLimit(tx, WAIT_SPREAD)}
    )
    select key from ${tx(t.flowSlots)}
    where kind = ${kind}
      and key = coalesce((select key from first offset ${pick} limit 1), (select key from first limit 1))
    for update`
  return rows.map((r) => r.key)
}
