/**
 * Valid values from a JSON Schema (the request schemas of the OpenAPI document),
 * the starting point that mutations bend. Field names Foreman gives a meaning
 * beyond their schema (a worker id that holds a lease, a cron expression, a time
 * zone) get realistic values too, or near-valid bodies would almost never get past
 * the first check and the deeper code would go unfuzzed.
 */
import fc from 'fast-check'
import { idPrefixOf, type Schema } from './openapi'
import { categoriesFor, PoolRef, type Val } from './values'

/** The kind and worker the pool's jobs and runs use, so valid calls reach them. */
export const POOL_KIND = 'fuzz-kind'
export const POOL_WORKER = 'fuzz-worker'

/** Strings that have broken parsers, logs or SQL before; none is an error text we look for. */
export const TRICKY_STRINGS = [
  "'",
  '"',
  '\\',
  "'; drop table jobs; --",
  '$1',
  '$' + '{x}', // a template placeholder, as text
  '%s%n',
  ' ',
  '\t\r\n',
  '\u2028\u2029',
  '\ufeff',
  '\u0085',
  '𝕏😀',
  'null',
  'true',
  '0',
  '-0',
  '__proto__',
  'constructor',
  '../../etc/passwd',
  '%00',
  '<script>',
  'a'.repeat(200),
  'é'.repeat(200),
  '😀'.repeat(100),
]

const CRONS = [
  '* * * * *',
  '*/5 * * * *',
  '30 2 * * *',
  '@hourly',
  '@daily',
  '@yearly',
  '@every 5m',
  '@every 1h30m',
  '0 0 31 2 *',
  '0 0 29 2 1',
  '*/0 * * * *',
  '61 * * * *',
  '@every 0s',
  '@every 1ns',
  '@every 100000000h',
  '@every -5m',
  '@reboot',
  'L * * * *',
  '? ? ? ? ?',
  '0 0 * * 8',
  '* * * * * *',
  '1-1000000000 * * * *',
]
const ZONES = [
  'UTC',
  'Europe/Paris',
  'America/New_York',
  'Asia/Kathmandu',
  'Etc/GMT+14',
  'EST5EDT',
  'Mars/Olympus',
  'utc',
  '+05:00',
  'Europe/../UTC',
  'localtime',
]
const STAMPS = [
  '2026-01-01T12:00:00.000Z',
  '2020-01-01T00:00:00Z',
  '2099-12-31T23:59:59.999Z',
  '1970-01-01T00:00:00Z',
  '0001-01-01T00:00:00Z',
  '9999-12-31T23:59:59Z',
  '2026-02-30T00:00:00Z',
  '2016-12-31T23:59:60Z',
  '2026-01-01T00:00:00+23:59',
  '2026-01-01T00:00:00.123456789Z',
  '2026-01-01t00:00:00z',
]

/**
 * Event ids (`<version>/<job id>`, as GET /events sends them), timestamps, and
 * near-misses: what `since` and Last-Event-ID may carry. Header-safe (no CR, LF, NUL).
 */
export const eventIdArb: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...STAMPS),
  fc
    .tuple(fc.date({ noInvalidDate: true }), fc.ulid())
    .map(([d, u]) => `${d.toISOString().replace(/Z$/, '123Z')}/job_${u}`),
  fc.constantFrom(
    '',
    '0',
    '-1',
    'abc',
    '/',
    '//',
    '0000-01-01T00:00:00.000000Z/x',
    '9999-12-31T23:59:59.999999Z/job_',
    '2026-02-30T00:00:00.000000Z/x',
    '2026-01-01T24:00:00.000000Z',
    '2026-01-01T00:00:00.000000Z/%00',
    `2026-01-01T00:00:00Z/${'x'.repeat(300)}`,
    '1e308',
  ),
)

/** A string of printable ASCII or any well-formed Unicode. */
const text = (minLength: number, maxLength: number) =>
  fc.oneof(
    fc.string({ minLength, maxLength }),
    fc.string({ minLength, maxLength, unit: 'grapheme' }),
    fc.constantFrom(...TRICKY_STRINGS).filter((s) => s.length >= minLength && s.length <= maxLength),
  )

/** An id of `prefix`: mostly a stored one, sometimes well-formed but unknown. */
export function idArb(prefix: string): fc.Arbitrary<Val> {
  const categories = categoriesFor(prefix)
  const stored = categories.length
    ? fc.tuple(fc.constantFrom(...categories), fc.nat()).map(([c, i]) => new PoolRef(c, i) as Val)
    : fc.constant(`${prefix}00000000000000000000000000` as Val)
  return fc.oneof({ arbitrary: stored, weight: 4 }, { arbitrary: fc.ulid().map((u) => `${prefix}${u}`), weight: 1 })
}

/** Values that mean something for a field of this name, or undefined. */
function hinted(name: string | undefined): fc.Arbitrary<Val> | undefined {
  switch (name) {
    case 'kind':
      return fc.constantFrom(POOL_KIND, POOL_KIND, 'fuzz-other')
    case 'worker_id':
      return fc.constantFrom(POOL_WORKER, POOL_WORKER, POOL_WORKER, 'someone-else')
    case 'queue':
      return fc.constantFrom('default', 'fuzz-queue')
    case 'cron_expr':
      return fc.constantFrom(...CRONS)
    case 'timezone':
      return fc.constantFrom(...ZONES)
    case 'scheduled_at':
    case 'since':
      return fc.oneof(
        fc.constantFrom(...STAMPS),
        fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
      )
    // Long polls hold a request open for the whole wait: keep valid waits short.
    case 'wait_seconds':
      return fc.constantFrom(0, 0, 0.05, 0.2)
    default:
      return undefined
  }
}

/** Any JSON value, with the awkward ones made likely. */
export const anyJson: fc.Arbitrary<Val> = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Val>,
  fc.constantFrom<Val>(null, 0, -1, 1.5, 1e300, '', 'x', [], {}, { a: [1, { b: null }] }),
  fc.constantFrom(...TRICKY_STRINGS),
)

/** A valid value of `schema` (the field `name`, when it has one). */
export function validArb(schema: Schema, name?: string): fc.Arbitrary<Val> {
  const hint = hinted(name)
  if (hint && name === 'wait_seconds') return hint
  const generic = fromSchema(schema, name)
  return hint ? fc.oneof({ arbitrary: hint, weight: 4 }, { arbitrary: generic, weight: 1 }) : generic
}

function fromSchema(schema: Schema, name?: string): fc.Arbitrary<Val> {
  if (schema.const !== undefined) return fc.constant(schema.const as Val)
  if (schema.anyOf?.length) return fc.oneof(...schema.anyOf.map((s) => validArb(s, name)))
  switch (schema.type) {
    case 'string': {
      const prefix = idPrefixOf(schema)
      if (prefix) return idArb(prefix)
      if (schema.format === 'date-time') return fc.constantFrom(...STAMPS)
      // Query strings coerce "integer"-formatted text (limit): send numbers, as text.
      if (schema.format === 'integer') return fc.integer({ min: -5, max: 300 }).map(String)
      const min = schema.minLength ?? 0
      return text(min, Math.max(min, Math.min(schema.maxLength ?? 40, 40)))
    }
    case 'integer': {
      const min = schema.minimum ?? -1_000_000
      const max = schema.maximum ?? 1_000_000
      return fc.oneof(fc.integer({ min, max }), fc.constantFrom(min, max))
    }
    case 'number':
      return fc.double({
        min: schema.minimum ?? -1e6,
        max: schema.maximum ?? 1e6,
        noNaN: true,
        noDefaultInfinity: true,
      })
    case 'boolean':
      return fc.boolean()
    case 'null':
      return fc.constant(null)
    case 'array': {
      const min = schema.minItems ?? 0
      const max = Math.max(min, Math.min(schema.maxItems ?? 4, 4))
      // A list of kinds: the pool's kind first, so claims find work.
      const item = name === 'kinds' ? fc.constantFrom<Val>(POOL_KIND) : validArb(schema.items ?? {}, undefined)
      return fc.array(item, { minLength: min, maxLength: max })
    }
    case 'object':
      return objectArb(schema)
    default:
      return anyJson
  }
}

function objectArb(schema: Schema): fc.Arbitrary<Val> {
  const props = schema.properties ?? {}
  const required = new Set(schema.required ?? [])
  const entries = Object.entries(props).map(([key, s]) => {
    const value = validArb(s, key)
    // Optional fields are present about half the time.
    return fc.tuple(fc.constant(key), required.has(key) ? value : fc.option(value, { nil: undefined, freq: 2 }))
  })
  return fc.tuple(...entries).map((pairs) => {
    const out: { [key: string]: Val } = {}
    for (const [key, value] of pairs) if (value !== undefined) out[key] = value
    return out
  })
}
