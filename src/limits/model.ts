/** Schemas (and their types) for flow-control limits per kind: what PUT /limits/:kind takes and the routes answer. */
import { Type } from '@sinclair/typebox'
import { type TSchema, t } from 'elysia'
import { Name, Nullable, StrictInteger, Timestamp } from '../http/schema'

/** Largest count a limit takes (the columns are int4; a billion is already "no limit" in practice). */
export const MAX_LIMIT = 1_000_000_000
/** Longest rate window: a day. */
export const MAX_RATE_SECONDS = 86_400

/** The `:kind` path parameter. */
export const LimitsParams = t.Object({ kind: Name('The kind the limits apply to') })

/** A sliding-window rate: at most `limit` claims in any `per_seconds`. */
export const Rate = t.Object({
  limit: StrictInteger(1, MAX_LIMIT, 'Most claims in any window'),
  per_seconds: StrictInteger(1, MAX_RATE_SECONDS, `Window length in seconds (1–${MAX_RATE_SECONDS})`),
})
export type Rate = typeof Rate.static

const MaxActive = (description: string) => t.Optional(StrictInteger(0, MAX_LIMIT, description))

/**
 * PUT /limits/:kind: a full replace, so a field left out is no limit of that sort.
 * Unknown fields are refused (refuseUnknownFields), and at least one field is needed
 * (to lift every limit, DELETE them).
 */
export const LimitsBody = t.Object({
  max_active: MaxActive('Most running jobs of the kind at once (0 holds the kind)'),
  max_active_per_key: MaxActive('Most running jobs of the kind at once per concurrency_key'),
  rate: t.Optional(t.Object(Rate.properties, { description: 'Most claims of the kind in any window' })),
  rate_per_key: t.Optional(
    t.Object(Rate.properties, { description: 'Most claims of the kind in any window, per concurrency_key' }),
  ),
})
export type LimitsBody = typeof LimitsBody.static

/** The fields of LimitsBody, for the refusal that names none. */
export const LIMIT_FIELDS = Object.keys(LimitsBody.properties) as (keyof LimitsBody)[]

/** A kind's stored limits; null is no limit of that sort. */
export const Limits = t.Object({
  kind: t.String(),
  max_active: Nullable(t.Integer()),
  max_active_per_key: Nullable(t.Integer()),
  rate: Nullable(Rate),
  rate_per_key: Nullable(Rate),
  updated_at: Timestamp,
})
export type Limits = typeof Limits.static

/** Most busy keys GET /limits/:kind lists (`keys_limit`). */
export const MAX_KEYS_LIMIT = 200
/** How many busy keys GET /limits/:kind lists when not asked. */
export const DEFAULT_KEYS_LIMIT = 20

/**
 * `?keys_limit=`. The range is checked by keysLimitOf (service.ts), not the schema:
 * Elysia's refusal of a coerced query number out of its bounds does not name the field.
 */
export const LimitsGetQuery = t.Object({
  keys_limit: t.Optional(
    t.Integer({ description: `How many busy keys to list, 1–${MAX_KEYS_LIMIT} (default ${DEFAULT_KEYS_LIMIT})` }),
  ),
})
export type LimitsGetQuery = typeof LimitsGetQuery.static

/** A count in an answer: TypeBox's integer, since Elysia's (for coerced input) documents `anyOf[string, integer]`. */
const Count = (description: string) => Type.Integer({ minimum: 0, description })
/** `schema` or null, the description on the pair (Nullable takes none). */
const OrNull = <T extends TSchema>(schema: T, description: string) => t.Union([schema, t.Null()], { description })

/** A rate limit's sliding window now, as the claim sees it. */
export const RateWindow = t.Object({
  claims: Count('Claims within the last `per_seconds` (the limit is full at `limit`)'),
  per_seconds: Type.Integer({ description: 'The window length of the limit' }),
  opens_at: OrNull(
    Timestamp,
    'When the window is full: when it next has room (the oldest claim it counts leaves it); null while it has room now',
  ),
})
export type RateWindow = typeof RateWindow.static

/** One busy key of a kind: running or pending flow-controlled jobs. */
export const FlowKey = t.Object({
  key: OrNull(t.String(), 'The concurrency_key; null for the jobs without one (one group)'),
  active: Count('Jobs of this key running now'),
  pending: Count('Jobs of this key pending (due or not)'),
  rate_window: OrNull(RateWindow, "The key's `rate_per_key` window; null when the kind has none"),
  last_served_at: OrNull(
    Timestamp,
    'When a claim last gave this key its turn (served it, or passed it over at a limit); null when never',
  ),
})
export type FlowKey = typeof FlowKey.static

/**
 * GET /limits/:kind: the stored limits and where the kind stands against them.
 * Counts are exact: the read visits every pending job of the kind once (about
 * 40–60 ms for 100,000 pending jobs over 10,000 keys, see bench/flow-keys.ts).
 */
export const LimitsDetail = t.Object({
  ...Limits.properties,
  active: Count('Flow-controlled jobs of the kind running now'),
  pending: Count('Flow-controlled jobs of the kind pending (due or not)'),
  rate_window: OrNull(RateWindow, 'The kind-wide `rate` window; null when the kind has none'),
  keys: t.Array(FlowKey, {
    description: `Busy keys (running or pending jobs), by active, then pending (both most first), then key; at most \`keys_limit\``,
  }),
  keys_more: t.Boolean({ description: 'True when more busy keys exist than `keys` lists' }),
})
export type LimitsDetail = typeof LimitsDetail.static

/** DELETE /limits/:kind: the kind whose limits were removed. */
export const LimitsDeleted = t.Object({ kind: t.String() })
export type LimitsDeleted = typeof LimitsDeleted.static
