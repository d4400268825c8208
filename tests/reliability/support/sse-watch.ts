/**
 * Watches `GET /events` streams: which jobs each one has seen in a terminal
 * state (and any job that showed another state after it: terminal twice),
 * whether the stream is still open, and when its last event came.
 */
import { parseSse } from '../../../src/client/sse'
import { onCleanup } from './processes'

/** One open stream and what it saw. */
export class StreamWatch {
  /** Job ids seen in a terminal state, with that state. */
  readonly terminal = new Map<string, string>()
  /** Jobs that showed another state after a terminal one (a job terminal twice, or going back). */
  readonly regressions: string[] = []
  events = 0
  lastEventAt = 0
  ended: string | null = null
  private readonly abort = new AbortController()
  private opened: Promise<void>

  constructor(
    readonly name: string,
    url: string,
  ) {
    let ready: () => void = () => {}
    this.opened = new Promise<void>((resolve) => {
      ready = resolve
    })
    onCleanup(() => this.close())
    this.read(url, ready).catch((error) => {
      this.ended ??= `error: ${String(error)}`
      ready()
    })
  }

  /** Resolves once the response headers arrived (or the stream failed). */
  ready(): Promise<void> {
    return this.opened
  }

  /** Closes the stream. */
  close(): void {
    this.ended ??= 'closed by the test'
    this.abort.abort()
  }

  private async read(url: string, ready: () => void): Promise<void> {
    const res = await fetch(url, { headers: { accept: 'text/event-stream' }, signal: this.abort.signal })
    ready()
    if (res.status !== 200 || !res.body) {
      this.ended = `answered ${res.status}`
      return
    }
    try {
      for await (const message of parseSse(res.body)) {
        if (message.event !== 'job') continue
        const job = JSON.parse(message.data) as { id: string; status: string }
        this.events++
        this.lastEventAt = Date.now()
        const ended = this.terminal.get(job.id)
        if (ended !== undefined && ended !== job.status) {
          this.regressions.push(`${job.id}: ${job.status} after ${ended}`)
        }
        if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'cancelled') {
          this.terminal.set(job.id, ended ?? job.status)
        }
      }
      this.ended ??= 'the server ended the stream'
    } catch (error) {
      this.ended ??= `error: ${String(error)}`
    }
  }
}
