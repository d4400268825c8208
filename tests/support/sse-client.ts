/**
 * A small server-sent-events reader over fetch, for tests: it parses `retry:`,
 * `id:`, `event:` and `data:` fields and `:` comments as they arrive, and lets a
 * test await the next events (or the end of the stream) with a timeout.
 */

/** One dispatched event; `data` is parsed as JSON when it is JSON. */
export interface SseEvent {
  id: string | undefined
  event: string
  data: any
}

/** Everything the stream carried, in arrival order. */
export type SseFrame =
  | { type: 'retry'; ms: number }
  | { type: 'comment'; text: string }
  | ({ type: 'event' } & SseEvent)

/** An open (or refused) SSE request. */
export class SseReader {
  readonly frames: SseFrame[] = []
  /** True once the server ended the stream (or the read failed after an abort). */
  done = false
  /** Events handed out by next() so far. */
  private consumed = 0
  private buffer = ''
  private readonly changed = new Set<() => void>()

  private constructor(
    readonly response: Response,
    private readonly controller: AbortController,
  ) {}

  /**
   * Opens `url`. A non-2xx answer is not read as a stream: its JSON body is in
   * `refused` and the reader is already done.
   */
  static async open(url: string, headers: Record<string, string> = {}): Promise<SseReader> {
    const controller = new AbortController()
    const response = await fetch(url, {
      headers: { accept: 'text/event-stream', ...headers },
      signal: controller.signal,
    })
    const reader = new SseReader(response, controller)
    if (!response.ok || !response.body) {
      reader.refused = await response.json().catch(() => null)
      reader.done = true
    } else {
      void reader.pump(response.body)
    }
    return reader
  }

  /** The JSON body of a refused (non-2xx) answer. */
  refused: any = null

  get status(): number {
    return this.response.status
  }

  /** Every event so far (not comments or retry). */
  get events(): SseEvent[] {
    return this.frames.filter((f): f is { type: 'event' } & SseEvent => f.type === 'event')
  }

  /** Every comment so far, without the leading colon. */
  get comments(): string[] {
    return this.frames.flatMap((f) => (f.type === 'comment' ? [f.text] : []))
  }

  /** Awaits the next `n` events after those already handed out. */
  async next(n = 1, timeoutMs = 4000): Promise<SseEvent[]> {
    const want = this.consumed + n
    await this.until(() => this.events.length >= want, timeoutMs, `${n} more event(s)`)
    const got = this.events.slice(this.consumed, want)
    this.consumed = want
    return got
  }

  /** Awaits the end of the stream. */
  async ended(timeoutMs = 4000): Promise<void> {
    await this.until(() => this.done, timeoutMs, 'the end of the stream')
  }

  /** Awaits a condition over what has arrived, re-checked on every frame. */
  until(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (condition()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const check = () => {
        if (condition()) {
          finish()
          resolve()
        } else if (this.done) {
          finish()
          reject(new Error(`stream ended while waiting for ${what}; got ${this.describe()}`))
        }
      }
      const timer = setTimeout(() => {
        finish()
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got ${this.describe()}`))
      }, timeoutMs)
      const finish = () => {
        clearTimeout(timer)
        this.changed.delete(check)
      }
      this.changed.add(check)
    })
  }

  /** Disconnects, as a client going away would. */
  close(): void {
    this.controller.abort()
  }

  private describe(): string {
    return JSON.stringify(this.events.map((e) => `${e.event}:${e.data?.id ?? ''}:${e.data?.status ?? ''}`))
  }

  private notify(): void {
    for (const fn of [...this.changed]) fn()
  }

  private async pump(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder()
    try {
      for await (const chunk of body) {
        this.buffer += decoder.decode(chunk, { stream: true }).replace(/\r\n?/g, '\n')
        for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
          const block = this.buffer.slice(0, end)
          this.buffer = this.buffer.slice(end + 2)
          this.parse(block)
        }
        this.notify()
      }
    } catch {
      // Aborted by close(): the stream is over either way.
    }
    this.done = true
    this.notify()
  }

  private parse(block: string): void {
    let id: string | undefined
    let event = 'message'
    const data: string[] = []
    let isEvent = false
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) {
        this.frames.push({ type: 'comment', text: line.slice(1).trim() })
        continue
      }
      const colon = line.indexOf(':')
      const field = colon < 0 ? line : line.slice(0, colon)
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '')
      if (field === 'retry') this.frames.push({ type: 'retry', ms: Number(value) })
      else if (field === 'id') id = value
      else if (field === 'event') {
        event = value
        isEvent = true
      } else if (field === 'data') {
        data.push(value)
        isEvent = true
      }
    }
    if (!isEvent) return
    const text = data.join('\n')
    let parsed: unknown = text
    try {
      parsed = JSON.parse(text)
    } catch {
      // Not JSON: keep the text.
    }
    this.frames.push({ type: 'event', id, event, data: parsed })
  }
}

/** Polls `condition` every few ms until true; throws after `timeoutMs`. */
export async function eventually(condition: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await Bun.sleep(5)
  }
}
