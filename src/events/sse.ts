/**
 * Server-sent events as a web-standard ReadableStream: `retry:` hint first, then
 * events, with comment keep-alives so neither an idle timeout nor a proxy closes a
 * quiet stream. Closing from either side (the client going away, or the producer
 * calling close) runs the producer's cleanup exactly once.
 */

/** The producer's handle on an open stream. */
export interface SseChannel {
  /** Sends one event with `data` as JSON; ignored once closed. */
  send(event: string, data: unknown, id?: string): void
  /** The same, for data already serialised as JSON. */
  sendJson(event: string, json: string, id?: string): void
  /** Ends the stream (after what was sent). */
  close(): void
  readonly closed: boolean
}

/** Stream settings. */
export interface SseOptions {
  keepAliveMs: number
  retryMs: number
  /** Aborted when the client goes away (the request's signal). */
  signal?: AbortSignal
  /** Counts open streams (for leak checks). */
  counter?: { open: number }
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
  let cleanup: (() => void) | undefined
  let finish: () => void = () => {}

  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      let closed = false
      const keepAlive = setInterval(() => write(': keep-alive\n\n'), options.keepAliveMs)
      const write = (text: string) => {
        if (closed) return
        try {
          controller.enqueue(encoder.encode(text))
        } catch {
          finish()
        }
      }
      finish = () => {
        if (closed) return
        closed = true
        clearInterval(keepAlive)
        options.signal?.removeEventListener('abort', finish)
        if (options.counter) options.counter.open--
        try {
          cleanup?.()
        } finally {
          try {
            controller.close()
          } catch {
            // Already closed by the client going away.
          }
        }
      }
      if (options.counter) options.counter.open++
      options.signal?.addEventListener('abort', finish, { once: true })
      write(`retry: ${options.retryMs}\n\n`)
      const channel: SseChannel = {
        send: (event, data, id) => write(formatEvent(event, JSON.stringify(data), id)),
        sendJson: (event, json, id) => write(formatEvent(event, json, id)),
        close: () => finish(),
        get closed() {
          return closed
        },
      }
      cleanup = produce(channel)
      if (closed) {
        // The producer closed during start (e.g. an already terminal job): clean up now.
        const late = cleanup
        cleanup = undefined
        late()
      }
    },
    cancel() {
      finish()
    },
  })
  return new Response(stream, {
    headers: {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache, no-transform',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    },
  })
}
