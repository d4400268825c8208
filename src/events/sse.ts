/**
 * Server-sent events as a web-standard ReadableStream: `retry:` hint first, then
 * events, with comment keep-alives so neither an idle timeout nor a proxy closes a
 * quiet stream. Closing from either side (the client going away, or the producer
 * calling close) runs the producer's cleanup exactly once.
 *
 * Backpressure: `enqueue` never blocks, so a client that stops reading made the
 * queue grow without bound (tests/events-backpressure.test.ts: a never-reading
 * client cost the server process 508 MB of RSS while 20,000 jobs of 8 KiB changed;
 * with the budget, 5-8 MB). So the queue is measured in bytes, and a stream whose
 * client leaves more than `budgetBytes` unread is ended; the client resumes with
 * Last-Event-ID. Measured on Bun 1.4.4: when the socket is writable Bun takes the
 * whole queue, writes what the socket accepts and keeps the rest in a buffer of its
 * own, and while that buffer waits it takes nothing more. So once the kernel
 * buffers are full `desiredSize` falls by every unread byte, `pull` runs again when
 * the client catches up, and a stalled stream costs at most Bun's buffer (what was
 * queued at its last read) plus the budget plus one burst.
 */

/** The producer's handle on an open stream. */
export interface SseChannel {
  /** Sends one event with `data` as JSON; ignored once closed. */
  send(event: string, data: unknown, id?: string): void
  /** The same, for data already serialised as JSON. */
  sendJson(event: string, json: string, id?: string): void
  /** True while less than half the budget is unread: a paced producer may send. */
  readonly hasRoom: boolean
  /** Resolves once `hasRoom` (or the stream has ended): pacing for replays. */
  room(): Promise<void>
  /** Ends the stream (after what was sent). */
  close(): void
  /** Ends the stream at once, dropping what is unread, as when the budget is exceeded. */
  shed(): void
  readonly closed: boolean
}

/** Why a stream ended: the producer closed it, the client or the process went away, or the client fell too far behind. */
export type SseEnd = 'closed' | 'aborted' | 'over-budget'

/** Stream settings. */
export interface SseOptions {
  keepAliveMs: number
  retryMs: number
  /** Most bytes the client may leave unread before more is sent; beyond it the stream is ended. */
  budgetBytes: number
  /** Aborted when the client goes away (the request's signal). */
  signal?: AbortSignal
  /** Runs once when the stream ends, however it ends (after the producer's cleanup). */
  onEnd?: (why: SseEnd) => void
}

const encoder = new TextEncoder()

/** Formats one SSE event. Data is JSON text, which holds no raw newlines. */
export function formatEvent(event: string, json: string, id?: string): string {
  return `${id ? `id: ${id}\n` : ''}event: ${event}\ndata: ${json}\n\n`
}

/**
 * Opens an SSE response. `produce` starts producing on the channel and answers its
 * cleanup (stop watching, clear timers), run once when the stream ends.
 */
export function sseResponse(produce: (channel: SseChannel) => () => void, options: SseOptions): Response {
  // The queue's high-water mark is half the budget: below it a paced producer (a
  // replay) may send and `pull` runs; beyond the whole budget the stream is ended.
  const highWaterMark = options.budgetBytes / 2
  let cleanup: (() => void) | undefined
  let finish: (why: SseEnd) => void = () => {}
  let roomWaiters: (() => void)[] = []
  const wake = () => {
    const waiters = roomWaiters
    roomWaiters = []
    for (const resolve of waiters) resolve()
  }

  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        let closed = false
        const end = () => finish('aborted')
        const hasRoom = () => (controller.desiredSize ?? 0) > 0
        // Whether more than the budget was unread when the current synchronous burst
        // of writes began. One re-read batch is one burst: it may take the queue
        // past the budget by itself, and Bun hands the socket what it can once the
        // burst yields; only what is still unread when more arrives counts.
        let overAtBurstStart: boolean | undefined
        const overBudget = () => {
          if (overAtBurstStart === undefined) {
            overAtBurstStart = (controller.desiredSize ?? 0) < highWaterMark - options.budgetBytes
            queueMicrotask(() => {
              overAtBurstStart = undefined
            })
          }
          return overAtBurstStart
        }
        const write = (text: string) => {
          if (closed) return
          if (overBudget()) return finish('over-budget')
          try {
            controller.enqueue(encoder.encode(text))
          } catch {
            finish('aborted')
          }
        }
        const keepAlive = setInterval(() => write(': keep-alive\n\n'), options.keepAliveMs)
        finish = (why) => {
          if (closed) return
          closed = true
          clearInterval(keepAlive)
          options.signal?.removeEventListener('abort', end)
          try {
            cleanup?.()
          } finally {
            try {
              // Over budget, error() drops the unread queue at once and Bun resets the
              // connection; close() would keep it until a client that is not reading
              // reads it. No reason is passed: Bun prints any reason to stderr.
              if (why === 'over-budget') controller.error()
              else controller.close()
            } catch {
              // Already closed by the client going away.
            }
            wake()
            options.onEnd?.(why)
          }
        }
        options.signal?.addEventListener('abort', end, { once: true })
        write(`retry: ${options.retryMs}\n\n`)
        const channel: SseChannel = {
          send: (event, data, id) => write(formatEvent(event, JSON.stringify(data), id)),
          sendJson: (event, json, id) => write(formatEvent(event, json, id)),
          get hasRoom() {
            return hasRoom()
          },
          room: () =>
            closed || hasRoom() ? Promise.resolve() : new Promise<void>((resolve) => roomWaiters.push(resolve)),
          close: () => finish('closed'),
          shed: () => finish('over-budget'),
          get closed() {
            return closed
          },
        }
        try {
          cleanup = produce(channel)
        } catch (err) {
          finish('aborted')
          throw err
        }
        if (closed) {
          // The producer closed during start (e.g. an already terminal job): clean up now.
          const late = cleanup
          cleanup = undefined
          late()
        }
        if (options.signal?.aborted) end()
      },
      // Runs when the client has read the queue below the high-water mark.
      pull() {
        wake()
      },
      cancel() {
        finish('aborted')
      },
    },
    new ByteLengthQueuingStrategy({ highWaterMark }),
  )
  return new Response(stream, { headers: SSE_HEADERS })
}

/** The headers of every event stream (HEAD answers them alone). */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
}

/**
 * The answer to HEAD on a stream: the stream's status and headers, no body. Nothing
 * is subscribed and no stream slot is taken, since no event will be sent.
 */
export function sseHeadResponse(): Response {
  return new Response(null, { headers: SSE_HEADERS })
}
