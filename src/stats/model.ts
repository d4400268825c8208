/** Schemas (and their types) for GET /stats: throughput per minute and kind. */
import { t } from 'elysia'
import { OneOf, Timestamp } from '../http/schema'
import { MaxAgeQuery } from '../http/shared-read'

/** The windows GET /stats answers, in minutes. */
export const STATS_WINDOWS = { '15m': 15, '1h': 60, '6h': 360, '24h': 1440 } as const
export type StatsWindow = keyof typeof STATS_WINDOWS

/** `?window=`. */
export const StatsQuery = t.Object({
  window: t.Optional(OneOf(['15m', '1h', '6h', '24h'] as const, 'How far back: 15m, 1h (default), 6h or 24h')),
  ...MaxAgeQuery.properties,
})
export type StatsQuery = typeof StatsQuery.static

const Count = (description: string) => t.Integer({ minimum: 0, description })

/** One kind's activity in one minute. */
export const StatsRow = t.Object({
  minute: Timestamp,
  kind: t.String(),
  enqueued: Count('Jobs enqueued'),
  succeeded: Count('Jobs that succeeded'),
  failed: Count('Jobs that failed for good'),
  retried: Count('Runs that failed or were abandoned and whose job went back to pending for another attempt'),
})
export type StatsRow = typeof StatsRow.static

/** What GET /stats answers. */
export const Stats = t.Object({
  from: Timestamp,
  to: Timestamp,
  bucket_seconds: t.Literal(60),
  rows: t.Array(StatsRow, { description: 'Only minutes with activity, by minute then kind' }),
})
export type Stats = typeof Stats.static
