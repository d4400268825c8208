/**
 * The values the fuzzer builds bodies from, and their one serializer. Plain JSON
 * values, plus two placeholders JSON.stringify cannot express: raw text spliced in
 * verbatim (100,000-deep nesting, `1e999`, `-0`) and a reference to an id in the
 * pool, resolved only when the request is sent (the pool changes as cases run,
 * while a case must stay a pure function of fast-check's seed and path).
 */

/** Text inserted into the JSON as is. */
export class Raw {
  constructor(
    readonly text: string,
    readonly label: string,
  ) {}
  toJSON() {
    return `<raw ${this.label}>`
  }
}

/** Which stored objects an id may point at. */
export const POOL_CATEGORIES = ['jobPending', 'jobActive', 'jobDone', 'runRunning', 'runDone', 'sched'] as const
export type PoolCategory = (typeof POOL_CATEGORIES)[number]

/** The categories whose ids carry `prefix`. */
export const categoriesFor = (prefix: string): PoolCategory[] =>
  prefix === 'job_'
    ? ['jobPending', 'jobActive', 'jobDone']
    : prefix === 'run_'
      ? ['runRunning', 'runDone']
      : prefix === 'sched_'
        ? ['sched']
        : []

/** The index-th id of a category, as the pool stands at send time. */
export class PoolRef {
  constructor(
    readonly category: PoolCategory,
    readonly index: number,
  ) {}
  toJSON() {
    return `<${this.category}#${this.index}>`
  }
}

/** A fuzzed JSON value. */
export type Val = null | boolean | number | string | Raw | PoolRef | Val[] | { [key: string]: Val }

/** Answers the id a PoolRef stands for. */
export type Resolve = (ref: PoolRef) => string

/** True for a plain object node (not an array, not a placeholder). */
export function isObject(v: Val): v is { [key: string]: Val } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !(v instanceof Raw) && !(v instanceof PoolRef)
}

/** Sets a key as an own property, even `__proto__` (an assignment would set the prototype). */
export function setKey(obj: { [key: string]: Val }, key: string, value: Val): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true })
}

/** A copy of an object node, `__proto__` keys included. */
export function copyObject(obj: { [key: string]: Val }): { [key: string]: Val } {
  const out: { [key: string]: Val } = {}
  for (const [k, v] of Object.entries(obj)) setKey(out, k, v)
  return out
}

/** JSON text of a value: strings escaped as JSON.stringify does (lone surrogates as \ud800). */
export function serialize(v: Val, resolve: Resolve): string {
  if (v instanceof Raw) return v.text
  if (v instanceof PoolRef) return JSON.stringify(resolve(v))
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null'
  if (Array.isArray(v)) return `[${v.map((item) => serialize(item, resolve)).join(',')}]`
  return `{${Object.entries(v)
    .map(([k, item]) => `${JSON.stringify(k)}:${serialize(item, resolve)}`)
    .join(',')}}`
}

/** A deterministic pseudo-random generator (xorshift32) for large incompressible content. */
export function prng(seed: number): () => number {
  let x = seed | 0 || 0x9e3779b9
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x1_0000_0000
  }
}

const WIDE = ['é', 'ß', '中', '𝕏', '😀', 'Ω', 'ñ', '\u2028', '\u00a0']

/** `length` characters of random text (ASCII and multi-byte), incompressible. */
export function randomText(length: number, seed: number): string {
  const next = prng(seed)
  const parts: string[] = []
  for (let i = 0; i < length; i++) {
    const r = next()
    parts.push(r < 0.8 ? String.fromCharCode(33 + Math.floor(next() * 94)) : WIDE[Math.floor(next() * WIDE.length)]!)
  }
  return parts.join('')
}
