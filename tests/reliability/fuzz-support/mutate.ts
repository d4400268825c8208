/**
 * Mutations that bend a valid body into a near-valid one: each picks a node of the
 * value (the root included) and does one thing to it. Mutations are data (an op
 * name and two numbers from fast-check), applied by a pure function, so a case is
 * replayable from its seed and path and large content costs no generation time.
 */
import fc from 'fast-check'
import { copyObject, isObject, Raw, randomText, setKey, type Val } from './values'

export const MUTATIONS = [
  'wrongType',
  'nul',
  'surrogate',
  'deep',
  'number',
  'hugeArray',
  'longString',
  'extraField',
  'dropField',
  'null',
  'empty',
  'tricky',
] as const
export type MutationName = (typeof MUTATIONS)[number]

/** One mutation: what, where (an index into the value's nodes), and a free parameter. */
export interface Mutation {
  op: MutationName
  at: number
  n: number
}

export const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  op: fc.constantFrom(...MUTATIONS),
  at: fc.nat(),
  n: fc.nat(),
})

const WRONG_TYPES: Val[] = [0, -1, 1.5, true, false, '', 'x', '5', 'true', 'null', [], {}, [1, 2], { a: 1 }, [null]]

/** Numbers at and past every edge; Raw for the ones JavaScript cannot write. */
const NUMBERS: Val[] = [
  1e308,
  -1e308,
  5e-324,
  2 ** 53 + 2,
  2 ** 63,
  -(2 ** 63),
  2 ** 31,
  -(2 ** 31) - 1,
  1.0000000000000002,
  0.1,
  -1,
  new Raw('1e999', 'overflow'),
  new Raw('-1e999', 'negative overflow'),
  new Raw('-0', 'negative zero'),
  new Raw('-0.0e0', 'negative zero'),
  new Raw('1e-400', 'underflow'),
  new Raw('123456789012345678901234567890', 'bignum'),
  new Raw('1.5e+3', 'exponent'),
  new Raw('0.0000000000000000000000000001', 'tiny'),
  'NaN',
  'Infinity',
  '-Infinity',
  '1e308',
  '0x10',
  ' 5',
  '5 ',
  '٣',
]

const DEPTHS = [64, 100, 128, 256, 512, 1000, 2000, 5000, 10_000, 50_000, 100_000]
const ARRAY_SIZES = [101, 1001, 10_000, 100_000]
const STRING_LENGTHS = [201, 513, 1000, 2701, 10_001, 100_001, 1_100_000]
const SURROGATES = ['\ud800', '\udfff', '\udc00\ud800', '\ud83d', 'a\ud800b']

/** Fields that are not in any request schema, or that only the server may set. */
const EXTRA_FIELDS: [string, Val][] = [
  ['status', 'succeeded'],
  ['id', 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'],
  ['attempt_count', 99],
  ['cancel_requested', true],
  ['__proto__', { polluted: true, kind: 'proto-kind' }],
  ['constructor', { prototype: { polluted: true } }],
  ['', ''],
  ['x'.repeat(1000), 1],
  ['wait_seconds', 0.01],
]

/** `depth` levels of arrays or objects around a leaf, as text (no recursion anywhere). */
export function deepText(depth: number, n: number): string {
  const leaf = ['1', '"x"', 'null', '{}', '[]'][n % 5]!
  return n % 2 === 0 ? '['.repeat(depth) + leaf + ']'.repeat(depth) : '{"a":'.repeat(depth) + leaf + '}'.repeat(depth)
}

/** Every node of the value, depth first, as a path of keys and indexes. */
function nodes(v: Val, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(path)
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) nodes(v[i]!, [...path, i], out)
  } else if (isObject(v)) for (const [k, item] of Object.entries(v)) nodes(item, [...path, k], out)
  return out
}

/** A copy of `v` with the node at `path` replaced by what `change` makes of it. */
function replaceAt(v: Val, path: (string | number)[], change: (old: Val) => Val): Val {
  if (path.length === 0) return change(v)
  const [head, ...rest] = path
  if (Array.isArray(v)) return v.map((item, i) => (i === head ? replaceAt(item, rest, change) : item))
  if (isObject(v)) {
    const out = copyObject(v)
    setKey(out, String(head), replaceAt(v[String(head)]!, rest, change))
    return out
  }
  return v
}

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length]!

function insertAt(s: string, insert: string, n: number): string {
  const at = n % (s.length + 1)
  return s.slice(0, at) + insert + s.slice(at)
}

/** What one mutation makes of one node. */
function mutateNode(old: Val, op: MutationName, n: number): Val {
  switch (op) {
    case 'wrongType':
      return pick(WRONG_TYPES, n)
    case 'nul':
    case 'surrogate': {
      const bad = op === 'nul' ? '\u0000' : pick(SURROGATES, n)
      if (typeof old === 'string') return insertAt(old, bad, n >> 3)
      if (isObject(old)) {
        const out = copyObject(old)
        setKey(out, insertAt(Object.keys(old)[0] ?? 'key', bad, n >> 3), 1)
        return out
      }
      return Array.isArray(old) ? [...old, `a${bad}b`] : `a${bad}b`
    }
    case 'deep':
      return new Raw(deepText(pick(DEPTHS, n), n >> 4), `depth ${pick(DEPTHS, n)}`)
    case 'number':
      return pick(NUMBERS, n)
    case 'hugeArray': {
      const size = pick(ARRAY_SIZES, n)
      const first = Array.isArray(old) && old.length > 0 ? old[0] : undefined
      // Many copies of the array's own first item, unless an earlier mutation made it
      // big (a long string, a huge array): 100,000 copies of a 1 MB string is a body of
      // 100 GB, which ran the fuzzer itself out of memory. The point is many items.
      const small =
        first === null ||
        (typeof first === 'string' ? first.length <= 100 : typeof first !== 'object' && first !== undefined)
      const item: Val = small && first !== undefined ? first : [0, 'a', null, {}][(n >> 2) % 4]!
      return new Array<Val>(size).fill(item)
    }
    case 'longString':
      return randomText(pick(STRING_LENGTHS, n), n)
    case 'extraField': {
      if (!isObject(old)) return old
      const out = copyObject(old)
      const [key, value] = pick(EXTRA_FIELDS, n)
      setKey(out, key, value)
      return out
    }
    case 'dropField': {
      if (!isObject(old)) return old
      const keys = Object.keys(old)
      if (keys.length === 0) return old
      const drop = pick(keys, n)
      const out: { [key: string]: Val } = {}
      for (const [k, v] of Object.entries(old)) if (k !== drop) setKey(out, k, v)
      return out
    }
    case 'null':
      return null
    case 'empty':
      return pick<Val>(['', [], {}], n)
    case 'tricky':
      return pick(
        [
          "'",
          '"',
          '\\',
          '\u2028',
          '\ufeff',
          '𝕏',
          ' ',
          '-1',
          '[]',
          '{}',
          'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D',
          '*',
          // Names every plain object answers to: a lookup table keyed by input finds them.
          'constructor',
          '__proto__',
          'toString',
          'hasOwnProperty',
        ],
        n,
      )
  }
}

/** Applies mutations in order (each picks its node among the current value's nodes); answers a label too. */
export function applyMutations(v: Val, mutations: Mutation[]): { value: Val; label: string } {
  let out = v
  const labels: string[] = []
  for (const m of mutations) {
    const path = pick(nodes(out), m.at)
    labels.push(`${m.op}@${path.join('.') || 'root'}`)
    out = replaceAt(out, path, (old) => mutateNode(old, m.op, m.n))
  }
  return { value: out, label: labels.join('+') }
}
