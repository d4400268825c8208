/**
 * Watches a `GET /events` stream as a browser's EventSource would: when the
 * stream ends or breaks it reconnects with `Last-Event-ID` (the server resets a
 * reader that falls more than its byte budget behind, and the client is meant to
 * resume). It keeps which jobs it has seen in a terminal state, any job that
 * showed another state after a terminal one (terminal twice), and every end
 * with its reason.
 */
import { parseSse } from '../../../src/client/sse'
import { onCleanup } from './processes'

/** One stream, however many connections it took, and what it saw. */
export class StreamWatch {
  /** Job ids seen in a terminal state, with that state. */
  readonly terminal = new Map<string, string>()
  /** Jobs that showed another state after a terminal one (a job terminal twice, or going back). */
  readonly regressions: string[] = []
  /** Why each connection ended before the test closed the stream: `ended` (by the server) or the error. */
  readonly ends: { t: number; why: string }[] = []
  events = 0
  lastEventAt = 0
  private lastId = ''
  private closed = false
  private readonly abort = new AbortController()
  private readonly opened: Promise<void>

  constructor(
    readonly name: string,
    private readonly url: string,
  ) {
    let ready: () => void = () => {}
    this.opened = new Promise<void>((resolve) => {
      ready = resolve
    })
    onCleanup(() => this.close())
    this.run(ready)
  }

  /** Resolves once the first response's headers arrived (or it failed). */
  ready(): Promise<void> {
    return this.opened
  }

  /** Ends of the stream the server caused cleanly (not a reset), e.g. when the database went away. */
  get serverEnds(): number {
    return this.ends.filter((e) => e.why === 'ended by the server').length
  }

  /** Closes the stream for good. */
  close(): void {
    this.closed = true
    this.abort.abort()
  }

  private async run(ready: () => void): Promise<void> {
    while (!this.closed) {
      const why = await this.connect(ready).catch((error: unknown) => `error: ${String(error)}`)
      ready()
      if (this.closed) return
      this.ends.push({ t: Date.now(), why })
      await new Promise((resolve) => setTimeout(resolve, 200))
    }
  }

  /** One connection; answers why it ended. */
  private async connect(ready: () => void): Promise<string> {
    const headers: Record<string, string> = { accept: 'text/event-stream' }
    if (this.lastId) headers['last-event-id'] = this.lastId
    const res = await fetch(this.url, { headers, signal: this.abort.signal })
    ready()
    if (res.status !== 200 || !res.body) return `answered ${res.status}`
    for await (const message of parseSse(res.body)) {
      if (message.id) this.lastId = message.id
      if (message.event !== 'job') continue
      const job = JSON.parse(message.data) as { id: string; status: string }
      this.events++
      this.lastEventAt = Date.now()
      const ended = this.terminal.get(job.id)
      if (ended !== undefined && ended !== job.status) this.regressions.push(`${job.id}: ${job.status} after ${ended}`)
      if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') {
        this.terminal.set(job.id, ended ?? job.status)
      }
    }
    return 'ended by the server'
  }
}
