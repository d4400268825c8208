/**
 * The oracle: what any answer to any request must be. 2xx or 4xx; a 4xx is JSON
 * with a string `error`; no database or runtime internals in the text; an answer
 * in time; and a refusal leaves the stored data as it was.
 */
import type { Outcome } from './send'

/** Ways an answer can be wrong; the report counts each. */
export type ViolationKind =
  | 'fivexx'
  | 'hang'
  | 'no-answer'
  | 'bad-status'
  | 'non-json-refusal'
  | 'leaked-sql'
  | 'leaked-internals'
  | 'refused-changed-data'

/** Postgres error text that must never reach a client (checked case-sensitively). */
export const SQL_NEEDLES = [
  'syntax error',
  'violates',
  'relation "',
  'SQLSTATE',
  'stack depth',
  'column "',
  'invalid input syntax',
  'PostgresError',
  'duplicate key value',
  'at or near',
  'index row',
  'out of range for type',
  'current transaction is aborted',
  'unterminated',
  'ERROR:',
]

/** Runtime internals (stack traces, engine errors) that must not reach a client either. */
export const INTERNAL_NEEDLES = [
  '    at ',
  'TypeError',
  'RangeError',
  'ReferenceError',
  'Maximum call stack',
  'node_modules',
  '/src/',
]

/** What the oracle needs to know besides the answer. */
export interface Judging {
  method: string
  /** The request's body and URL: text echoed from them is not a leak. */
  requestText: string
  /** The table digest differs from the one before the request. */
  dataChanged: boolean
  /** The request was refused below the app (malformed HTTP framing): any 4xx or a close will do. */
  httpLayer?: boolean
}

/** Every rule `o` breaks, with a short detail each. */
export function judge(o: Outcome, j: Judging): { kind: ViolationKind; detail: string }[] {
  const out: { kind: ViolationKind; detail: string }[] = []
  if (o.hung) return [{ kind: 'hang', detail: `no answer within ${Math.round(o.ms)} ms` }]
  if (o.failure) {
    if (!j.httpLayer) out.push({ kind: 'no-answer', detail: o.failure })
  } else if (o.status >= 500) {
    out.push({ kind: 'fivexx', detail: `${o.status} ${o.text.slice(0, 300)}` })
  } else if (o.status < 200 || (o.status >= 300 && o.status < 400)) {
    out.push({ kind: 'bad-status', detail: String(o.status) })
  } else if (o.status >= 400 && j.method !== 'HEAD' && !j.httpLayer) {
    const error = parseError(o.text)
    if (!o.contentType.includes('application/json') || error === undefined) {
      out.push({
        kind: 'non-json-refusal',
        detail: `${o.status} content-type ${JSON.stringify(o.contentType)} body ${JSON.stringify(o.text.slice(0, 200))}`,
      })
    }
  }
  for (const needle of SQL_NEEDLES) {
    if (o.text.includes(needle) && !j.requestText.includes(needle)) {
      out.push({ kind: 'leaked-sql', detail: `${JSON.stringify(needle)} in ${JSON.stringify(o.text.slice(0, 300))}` })
      break
    }
  }
  for (const needle of INTERNAL_NEEDLES) {
    if (o.status >= 400 && o.text.includes(needle) && !j.requestText.includes(needle)) {
      out.push({
        kind: 'leaked-internals',
        detail: `${JSON.stringify(needle)} in ${JSON.stringify(o.text.slice(0, 300))}`,
      })
      break
    }
  }
  const refused = o.failure !== undefined || o.status >= 400
  if (refused && j.dataChanged) out.push({ kind: 'refused-changed-data', detail: `status ${o.status}` })
  return out
}

/** The `error` string of a JSON refusal, or undefined. */
function parseError(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as unknown
    const error = (body as { error?: unknown } | null)?.error
    return typeof error === 'string' ? error : undefined
  } catch {
    return undefined
  }
}
