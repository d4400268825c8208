/**
 * One iterative walk over a parsed request body that finds what Postgres cannot
 * store: nesting deeper than MAX_JSON_DEPTH, U+0000, lone UTF-16 surrogates, and
 * numbers JSON.parse turned into ±Infinity (`1e999`), which JSON.stringify writes
 * as `null`: a batch item's params became SQL NULL (a not-null violation, 500) and
 * a single enqueue stored `null` in place of the number.
 * Iterative because the input decides the depth: the recursive NUL check this
 * replaces overflowed the stack at 100,000 levels. Before the limit, measured on
 * POST /jobs: 10,000 levels of params were stored; 20,000 ended in Postgres'
 * `stack depth limit exceeded` (54001) and 100,000 in a stack overflow inside
 * postgres.js' JSON.stringify, both as 500s.
 */

/**
 * Deepest nesting of arrays and objects a request body may have, the body itself
 * being level 1 (so `params` on POST /jobs may nest 63 levels). Far beyond real
 * job parameters, far below where Postgres (20,000) or JSON.stringify (between
 * 30,000 and 50,000 here) give out, and every answer that echoes the value stays
 * cheap to encode.
 */
export const MAX_JSON_DEPTH = 64

/** Body fields that hold caller JSON of any shape; a depth refusal names the path down to one. */
const JSON_VALUE_FIELDS: ReadonlySet<string> = new Set(['params', 'result'])

/** Longest field path an error message quotes. */
const MAX_PATH_CHARS = 200

/** What a walk found, where (the dotted path), and the field an answer should name. */
export interface JsonProblem {
  field: string
  reason: string
}

interface Frame {
  value: unknown
  /** Containers on the way here, this one included when it is one. */
  depth: number
  /** Its key or index in the parent (an index stays a number: no string per element). */
  key: string | number
  parent: Frame | null
}

/**
 * The first thing in `value` that cannot be stored, or null. `checkStrings` may be
 * false when the JSON text holds no `\u` escape: only an escape can put U+0000 or
 * a lone surrogate into parsed JSON (raw ones are a parse error or decode to
 * U+FFFD), so the walk then only measures depth and checks numbers.
 */
export function findUnstorable(value: unknown, checkStrings = true): JsonProblem | null {
  const stack: Frame[] = [{ value, depth: 0, key: '', parent: null }]
  for (let frame = stack.pop(); frame !== undefined; frame = stack.pop()) {
    const item = frame.value
    if (typeof item === 'string') {
      if (checkStrings) {
        const reason = stringProblem(item)
        if (reason) return { field: pathOf(frame), reason }
      }
      continue
    }
    if (item === null || typeof item !== 'object') continue
    const depth = frame.depth + 1
    if (depth > MAX_JSON_DEPTH) {
      return {
        field: fieldOf(frame),
        reason: `is nested too deeply (a request body may nest arrays and objects ${MAX_JSON_DEPTH} levels deep)`,
      }
    }
    if (Array.isArray(item)) {
      for (let i = item.length - 1; i >= 0; i--) {
        const child = item[i]
        if (isNonFinite(child)) return nonFinite(frame, i)
        if (worthVisiting(child, checkStrings)) stack.push({ value: child, depth, key: i, parent: frame })
      }
      continue
    }
    const keys = Object.keys(item)
    for (let i = keys.length - 1; i >= 0; i--) {
      const key = keys[i] as string
      const reason = checkStrings ? stringProblem(key) : null
      if (reason) return { field: pathOf(frame), reason: `has a key that ${reason}` }
      const child = (item as Record<string, unknown>)[key]
      if (isNonFinite(child)) return nonFinite(frame, key)
      if (worthVisiting(child, checkStrings)) stack.push({ value: child, depth, key, parent: frame })
    }
  }
  return null
}

/** ±Infinity (JSON.parse's reading of `1e999`); NaN cannot come from JSON. */
function isNonFinite(value: unknown): boolean {
  return typeof value === 'number' && !Number.isFinite(value)
}

/** The problem of a non-finite number at `key` of the container `frame`. */
function nonFinite(frame: Frame, key: string | number): JsonProblem {
  return {
    field: pathOf({ value: null, depth: frame.depth, key, parent: frame }),
    reason: 'must be a finite number (JSON numbers beyond ±1.8e308 cannot be stored)',
  }
}

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/

/** Containers always; strings only when they are checked; other scalars never (a 1 MB array of numbers costs no frames). */
function worthVisiting(value: unknown, checkStrings: boolean): boolean {
  return typeof value === 'object' ? value !== null : checkStrings && typeof value === 'string'
}

/** Why `text` cannot be stored in Postgres text or jsonb as sent, or null. */
function stringProblem(text: string): string | null {
  if (text.includes('\u0000')) return 'must not contain \\u0000 (Postgres cannot store it)'
  // A lone surrogate is not Unicode: Postgres refuses it in jsonb and text would
  // silently store U+FFFD in its place.
  if (LONE_SURROGATE.test(text)) return 'must not contain a lone UTF-16 surrogate (\\ud800–\\udfff without its pair)'
  return null
}

function segments(frame: Frame): string[] {
  const out: string[] = []
  for (let at: Frame | null = frame; at?.parent; at = at.parent) out.push(String(at.key))
  return out.reverse()
}

/** The dotted path of `frame`, shortened for an error message. */
function pathOf(frame: Frame): string {
  const path = segments(frame).join('.')
  return path.length > MAX_PATH_CHARS ? `${path.slice(0, MAX_PATH_CHARS)}…` : path
}

/**
 * The field a depth refusal names: the path down to the first JSON-value field
 * (`params`, `jobs.3.params`, `runs.0.result`), else the top-level field; the
 * full path would be dozens of levels long.
 */
function fieldOf(frame: Frame): string {
  const path = segments(frame)
  const at = path.findIndex((key) => JSON_VALUE_FIELDS.has(key))
  return path.slice(0, at >= 0 ? at + 1 : 1).join('.')
}
