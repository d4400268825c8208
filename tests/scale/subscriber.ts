/**
 * One `GET /events` subscriber of the scale test. It keeps only what the checks
 * need of each event (job, version, status), not the whole job: the busiest
 * stream carries hundreds of thousands of events. Like a browser's EventSource
 * it reconnects with `Last-Event-ID` when the stream ends under it (a stream
 * whose reader falls 1 MiB behind is reset by design, and on a 2-core machine
 * running four instances in one process that can happen), so what it saw is
 * what a real client would have seen.
 */

/** Which jobs a stream asks for: the query of `GET /events`. */
export interface EventFilter {
  kind?: string
  queue?: string
  status?: string
}

/** What a stream saw of one job. */
export interface SeenJob {
  /** Versions in arrival order, each with the status sent with it. */
  states: { version: string; status: string; kind: string; queue: string }[]
}

/** True when a job (its kind, queue, status) passes `filter`. */
export const matches = (filter: EventFilter, job: { kind: string; queue: string; status: string }) =>
  (filter.kind === undefined || filter.kind === job.kind) &&
  (filter.queue === undefined || filter.queue === job.queue) &&
  (filter.status === undefined || filter.status === job.status)

/** A subscriber that reads until closed, reconnecting as an EventSource would. */
export class Subscriber {
  readonly seen = new Map<string, SeenJob>()
  events = 0
  reconnects = 0
  /** Errors other than our own close (a refused reconnect, a read that failed). */
  readonly errors: string[] = []
  private lastEventId: string | undefined
  private controller = new AbortController()
  private closed = false
  private readonly loop: Promise<void>

  constructor(
    readonly name: string,
    private readonly base: string,
    readonly filter: EventFilter,
  ) {
    this.loop = this.run()
  }

  private markOpened!: () => void
  /** Resolves once the first connection answered (events after this are seen). */
  readonly opened = new Promise<void>((resolve) => {
    this.markOpened = resolve
  })

  /** The newest version this stream sent of `jobId`, if any. */
  last(jobId: string): string | undefined {
    return this.seen.get(jobId)?.states.at(-1)?.version
  }

  /** Stops reading and waits for the loop to end. */
  async close(): Promise<void> {
    this.closed = true
    this.controller.abort()
    await this.loop
  }

  private async run(): Promise<void> {
    const query = new URLSearchParams(this.filter as Record<string, string>).toString()
    while (!this.closed) {
      try {
        const headers: Record<string, string> = { accept: 'text/event-stream' }
        if (this.lastEventId) headers['last-event-id'] = this.lastEventId
        const res = await fetch(`${this.base}/events?${query}`, { headers, signal: this.controller.signal })
        if (!res.ok || !res.body) throw new Error(`GET /events answered ${res.status}: ${await res.text()}`)
        this.markOpened()
        await this.read(res.body)
      } catch (error) {
        if (this.closed) return
        this.errors.push(String(error))
        await Bun.sleep(200)
      }
      if (this.closed) return
      this.reconnects++
    }
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder()
    let buffer = ''
    for await (const chunk of body) {
      buffer += decoder.decode(chunk, { stream: true })
      for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
        this.parse(buffer.slice(0, end))
        buffer = buffer.slice(end + 2)
      }
    }
  }

  private parse(block: string): void {
    let id: string | undefined
    let event = 'message'
    let data = ''
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) id = line.slice(4)
      else if (line.startsWith('event: ')) event = line.slice(7)
      else if (line.startsWith('data: ')) data += line.slice(6)
    }
    if (event !== 'job' || !id) return
    this.lastEventId = id
    this.events++
    const job = JSON.parse(data) as { id: string; kind: string; queue: string; status: string }
    const version = id.slice(0, id.indexOf('/'))
    const seen = this.seen.get(job.id) ?? { states: [] }
    this.seen.set(job.id, seen)
    seen.states.push({ version, status: job.status, kind: job.kind, queue: job.queue })
  }
}
