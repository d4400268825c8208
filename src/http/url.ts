import { InvalidInput } from '../errors'

/**
 * Refuses a URL whose percent-encoding does not decode (`%zz`, a cut-off `%E0%A4`,
 * bytes that are not UTF-8) with a 400 naming the query field or the path.
 * Elysia's query parser keeps such text as it stands, so `?kind=%zz` was a filter
 * on the literal "%zz" that quietly matched nothing.
 */
export function assertDecodableUrl(url: string): void {
  if (!url.includes('%')) return
  const queryAt = url.indexOf('?')
  if (!decodes(queryAt < 0 ? url : url.slice(0, queryAt))) {
    throw new InvalidInput('path', 'is not valid percent-encoding')
  }
  if (queryAt < 0) return
  for (const pair of url.slice(queryAt + 1).split('&')) {
    if (decodes(pair)) continue
    const key = pair.split('=', 1)[0] ?? ''
    throw new InvalidInput(key && decodes(key) ? key : 'query', 'is not valid percent-encoding')
  }
}

function decodes(text: string): boolean {
  try {
    decodeURIComponent(text)
    return true
  } catch {
    return false
  }
}
