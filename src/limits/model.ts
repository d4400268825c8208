/** Schemas (and their types) for flow-control limits per kind: what PUT /limits/:kind takes and the routes answer. */
import { t } from 'elysia'
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

/** DELETE /limits/:kind: the kind whose limits were removed. */
export const LimitsDeleted = t.Object({ kind: t.String() })
export type LimitsDeleted = typeof LimitsDeleted.static
