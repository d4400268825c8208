/** Sends one rendered case with a deadline; a missed deadline is a hang, not an error. */
import type { Rendered } from './cases'

/** What came back. */
export interface Outcome {
  status: number
  contentType: string
  text: string
  /** The deadline passed before the answer (headers and body) arrived. */
  hung: boolean
  /** The connection failed without an answer (reset, closed). */
  failure?: string
  ms: number
}

/** Base deadline: generous, because two cores are shared with other test runs. */
export const REQUEST_TIMEOUT_MS = 15_000

/** Long polls (wait_seconds ≤ 30) may legitimately hold an answer that long. */
export const deadlineFor = (r: Rendered) => REQUEST_TIMEOUT_MS + (r.bodyText.includes('wait_seconds') ? 31_000 : 0)

/** The body as a stream of the planned chunk sizes (fetch then sends it chunked). */
function streamed(body: Uint8Array, sizes: number[]): ReadableStream<Uint8Array> {
  let at = 0
  let i = 0
  // At most ~256 chunks: a megabyte in 3-byte chunks takes the client longer than the deadline.
  const least = Math.ceil(body.length / 256)
  return new ReadableStream({
    pull(controller) {
      if (at >= body.length) return controller.close()
      const size = Math.max(least, sizes[i++ % sizes.length]!)
      controller.enqueue(body.subarray(at, at + size))
      at += size
    },
  })
}

/** Sends `r`; never throws. */
export async function send(r: Rendered, timeoutMs = deadlineFor(r)): Promise<Outcome> {
  const started = performance.now()
  const controller = new AbortController()
  let timedOut = false
  const timer = setTimeout(() => {
    timedOut = true
    controller.abort()
  }, timeoutMs)
  const done = (o: Omit<Outcome, 'ms'>): Outcome => ({ ...o, ms: performance.now() - started })
  try {
    const res = await fetch(r.url, {
      method: r.method,
      headers: r.headers,
      body: r.body && r.chunks ? streamed(r.body, r.chunks) : (r.body as BodyInit | undefined),
      signal: controller.signal,
      redirect: 'manual',
    })
    const contentType = res.headers.get('content-type') ?? ''
    // A live event stream never ends: its headers are the answer.
    if (res.ok && contentType.includes('text/event-stream')) {
      controller.abort()
      return done({ status: res.status, contentType, text: '', hung: false })
    }
    const text = await res.text()
    return done({ status: res.status, contentType, text, hung: false })
  } catch (err) {
    if (timedOut) return done({ status: 0, contentType: '', text: '', hung: true })
    return done({ status: 0, contentType: '', text: '', hung: false, failure: String(err) })
  } finally {
    clearTimeout(timer)
  }
}
