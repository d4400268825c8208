import { InvalidInput, PayloadTooLarge } from '../errors'
import { findUnstorable } from './json-walk'

/**
 * Reads a request body as JSON whatever its Content-Type: the seed's curl calls
 * send JSON with `-d` and no header, which curl labels form-urlencoded. Enforces
 * the body limit while reading (a chunked body has no Content-Length to trust)
 * and refuses what Postgres cannot store (see json-walk) before any query runs.
 */
export async function readJsonBody(request: Request, maxBytes: number): Promise<unknown> {
  const declared = Number(request.headers.get('content-length'))
  if (declared > maxBytes) throw new PayloadTooLarge(maxBytes)
  const text = await readText(request, maxBytes)
  if (text.trim() === '') return {}
  let body: unknown
  try {
    // JSON.parse is iterative in JSC: a million levels parse; the walk below refuses them.
    body = JSON.parse(text)
  } catch {
    throw new InvalidInput('body', 'is not valid JSON')
  }
  // Only a \u escape can carry U+0000 or a lone surrogate into parsed JSON, so
  // without one the walk measures depth alone and skips every string.
  assertStorableJson(body, 'body', text.includes('\\u'))
  return body
}

/**
 * Refuses nesting deeper than MAX_JSON_DEPTH, U+0000, lone surrogates and
 * non-finite numbers anywhere in a parsed body or query, with a 400 naming the field, before they can become
 * a database error. `whole` names the value itself (`body`, `query`).
 */
export function assertStorable(value: unknown, whole: string): void {
  assertStorableJson(value, whole, true)
}

function assertStorableJson(value: unknown, whole: string, checkStrings: boolean): void {
  const problem = findUnstorable(value, checkStrings)
  if (problem) throw new InvalidInput(problem.field || whole, problem.reason)
}

async function readText(request: Request, maxBytes: number): Promise<string> {
  if (!request.body) return ''
  // With a Content-Length (already checked) the server frames the body to it, so
  // the fast path is safe; streaming chunk by chunk cost ~8% of a claim+complete
  // loop's CPU in a profile, and is kept for chunked bodies only.
  if (request.headers.has('content-length')) return request.text()
  const chunks: Uint8Array[] = []
  let size = 0
  for await (const chunk of request.body) {
    size += chunk.byteLength
    if (size > maxBytes) throw new PayloadTooLarge(maxBytes)
    chunks.push(chunk)
  }
  return new TextDecoder().decode(Buffer.concat(chunks))
}
