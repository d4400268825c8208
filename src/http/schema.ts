/**
 * Schema building blocks shared by every feature's model.
 *
 * Numbers in JSON bodies use TypeBox's own `Type.Integer`/`Type.Number`: Elysia's
 * `t.Integer` also accepts numeric strings ("5") in bodies and documents them as
 * `anyOf[string, integer]`. A JSON API should say what it means, so bodies are
 * strict; query strings (always text) use Elysia's coercing `t.Integer`.
 */

import type { TLiteral, TUnion } from '@sinclair/typebox'
import { Type } from '@sinclair/typebox'
import { type TSchema, t } from 'elysia'
import { InvalidInput } from '../errors'
import { idPattern } from '../ids'

/**
 * One of a fixed set of strings. Not `t.UnionEnum`: in a query schema Elysia gives
 * an optional UnionEnum its first member as a default, so `GET /jobs` quietly
 * became `GET /jobs?status=pending`.
 */
export const OneOf = <const T extends readonly string[]>(values: T, description?: string) =>
  t.Union(
    values.map((v) => t.Literal(v)),
    {
      description: description ?? `One of: ${values.join(', ')}`,
    },
  ) as unknown as TUnion<{ -readonly [K in keyof T]: TLiteral<T[K]> }>

/** A prefixed ULID id (`job_…`, `run_…`, `sched_…`); a malformed one is a 400 naming the field. */
export const PrefixedId = (prefix: string, what: string) =>
  t.String({
    pattern: idPattern(prefix),
    description: `${what} id: ${prefix} + ULID`,
    examples: [`${prefix}01JD8X3Q4N6V7W8Y9Z0A1B2C3D`],
  })

/** `schema` or JSON null. */
export const Nullable = <T extends TSchema>(schema: T) => t.Union([schema, t.Null()])

/** An RFC 3339 timestamp as Foreman writes it. */
export const Timestamp = t.String({ format: 'date-time', examples: ['2026-01-01T12:00:00.000Z'] })

/** Latest instant Foreman takes in: the end of year 9999 (UTC), as far as RFC 3339's four-digit year goes. */
const LATEST_MS = Date.UTC(9999, 11, 31, 23, 59, 59, 999)
/** Earliest: the start of year 1 (UTC); year 0 is 1 BC, which Postgres writes with a `BC` suffix. */
const EARLIEST_MS = new Date(0).setUTCFullYear(1, 0, 1)

/**
 * Reads a caller's RFC 3339 timestamp (already `format: date-time`) into a Date,
 * or throws InvalidInput naming `field`. Refuses a day the month does not have
 * (JavaScript rolls 30 February into March) and instants outside years 0001–9999
 * in UTC: beyond them toISOString writes an expanded year (`+010000-…`) that
 * Postgres refuses (22009, a 500), and an offset can carry a date in range out of
 * it (`9999-12-31T23:59:59-15:00`). Every route that takes a timestamp reads it
 * here, so the single and batch enqueue accept the same texts.
 */
export function parseTimestamp(text: string, field: string): Date {
  const ms = Date.parse(text)
  const date = /^(\d{4})-(\d\d)-(\d\d)/.exec(text)
  if (Number.isNaN(ms) || !date) throw new InvalidInput(field, 'must be an RFC 3339 timestamp')
  const [year, month, day] = date.slice(1).map(Number) as [number, number, number]
  // setUTCFullYear, not Date.UTC, which reads years 0–99 as 1900–1999.
  const calendar = new Date(new Date(0).setUTCFullYear(year, month - 1, day))
  if (calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    throw new InvalidInput(field, `${JSON.stringify(text.slice(0, 10))} is not a day of the calendar`)
  }
  if (ms < EARLIEST_MS || ms > LATEST_MS) {
    throw new InvalidInput(field, 'must fall between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z')
  }
  return new Date(ms)
}

/** A strict JSON integer (no numeric strings) within [minimum, maximum]. */
export const StrictInteger = (minimum: number, maximum: number, description?: string) =>
  Type.Integer({ minimum, maximum, description })

/** A strict JSON number (no numeric strings) within [minimum, maximum]. */
export const StrictNumber = (minimum: number, maximum: number, description?: string) =>
  Type.Number({ minimum, maximum, description })

/** A strict JSON boolean. */
export const StrictBoolean = (description?: string) => Type.Boolean({ description })

/** A name-like string (kind, queue, worker id…): short enough to index safely. */
export const Name = (description: string, minLength = 1) => t.String({ minLength, maxLength: 200, description })

/** Any JSON value (params, results). */
export const JsonValue = (description: string) => t.Unknown({ description })

/**
 * `schema`, documented in OpenAPI but not checked on the way out. For the hot
 * worker and producer routes, whose answers are one statement's rows: checking
 * every timestamp's format on every answer was a visible share of their CPU
 * (Elysia still strips fields the schema does not name).
 */
export const Unchecked = <T extends TSchema>(schema: T): T => ({ ...schema, noValidate: true })

/** Every non-2xx answer. */
export const ErrorBody = t.Object(
  { error: t.String({ description: 'What went wrong; names the field for bad input.' }) },
  { additionalProperties: true },
)

/** Largest page a list route answers. */
export const MAX_PAGE = 200

/**
 * Page size for list routes. The range is checked by `pageSize`, not the schema:
 * Elysia's query coercion reports an out-of-range number without the field's name.
 */
export const Limit = t.Optional(t.Integer({ description: `Page size, 1–${MAX_PAGE} (default 50)` }))

/** The page size a list answers: 50 when omitted, 400 naming `limit` outside 1..200. */
export function pageSize(limit: number | undefined): number {
  if (limit === undefined) return 50
  if (limit < 1 || limit > MAX_PAGE) throw new InvalidInput('limit', `must be between 1 and ${MAX_PAGE}`)
  return limit
}

/**
 * Refuses, with a 400 naming it, a body field the object schema does not list
 * (`rate.burst`), or a value that is not a JSON object where the schema wants one
 * (`rate: 100`), at any depth of nested objects. Elysia drops unknown fields
 * before validating, so a misspelt field would silently be no field at all (on a
 * full replace, "no limit" where the caller meant one); and for a non-object it
 * names a required field inside it. For a route's `transform`: it runs before
 * validation, so the body may be any shape. `field` names the value (the whole
 * body when omitted).
 */
export function refuseUnknownFields(value: unknown, schema: TSchema, field?: string): void {
  const properties = (schema as { properties?: Record<string, TSchema> }).properties
  if (!properties) return
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidInput(field ?? 'body', 'must be a JSON object')
  }
  const at = field === undefined ? '' : `${field}.`
  for (const [key, inner] of Object.entries(value)) {
    const known = Object.hasOwn(properties, key) ? properties[key] : undefined
    if (!known) throw new InvalidInput(`${at}${key}`, `is not a field (fields: ${Object.keys(properties).join(', ')})`)
    refuseUnknownFields(inner, known, `${at}${key}`)
  }
}
