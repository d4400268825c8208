/** A minimal server-sent events parser over a fetch body, as an async iterator. */

/** One dispatched SSE event. */
export interface SseMessage {
  /** The `event:` name (`message` when the server sent none). */
  event: string
  /** The `data:` lines joined with newlines. */
  data: string
  /** The last `id:` seen on the stream so far (empty when none). */
  id: string
}

/**
 * Parses an `text/event-stream` body into events, following the WHATWG rules that
 * matter here: `\n`, `\r\n` or `\r` line ends, `:` comments, multi-line `data:`,
 * a sticky last event id, and no dispatch for an event without data.
 * Leaving the loop early cancels the body.
 * @example for await (const m of parseSse(res.body!)) console.log(m.event, m.data)
 */
export async function* parseSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader()
  const decoder = new TextDecoder()
  let buffer = ''
  let event = ''
  let data: string[] = []
  let lastId = ''
  try {
    for (;;) {
      const { done, value } = await reader.read()
      buffer += done ? decoder.decode() : decoder.decode(value, { stream: true })
      let match = /\r\n|\r|\n/.exec(buffer)
      // A trailing lone \r may be the first half of \r\n: wait for more input.
      while (match && !(match[0] === '\r' && match.index === buffer.length - 1 && !done)) {
        const line = buffer.slice(0, match.index)
        buffer = buffer.slice(match.index + match[0].length)
        if (line === '') {
          if (data.length > 0) yield { event: event || 'message', data: data.join('\n'), id: lastId }
          event = ''
          data = []
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':')
          const field = colon < 0 ? line : line.slice(0, colon)
          let value = colon < 0 ? '' : line.slice(colon + 1)
          if (value.startsWith(' ')) value = value.slice(1)
          if (field === 'event') event = value
          else if (field === 'data') data.push(value)
          else if (field === 'id' && !value.includes('\0')) lastId = value
        }
        match = /\r\n|\r|\n/.exec(buffer)
      }
      if (done) return
    }
  } finally {
    await reader.cancel().catch(() => {})
  }
}
