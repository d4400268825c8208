/**
 * Polls `GET /readyz` every 100 ms and keeps every answer with its time, so a
 * scenario can ask when readiness turned 503 after a fault and when it came back.
 * A poll that takes its whole timeout counts as a hung request.
 */

import { onCleanup } from './processes'

/** One readyz answer. */
interface Probe {
  t: number
  status: number | 'error'
  ms: number
}

/** A readyz poller running until stop(). */
export class ReadinessProbe {
  private readonly probes: Probe[] = []
  readonly hung: string[] = []
  private stopped = false

  constructor(
    private readonly origin: string,
    private readonly timeoutMs: number,
  ) {
    onCleanup(() => this.stop())
    this.loop()
  }

  /** Answers by status (`error`: none arrived). */
  get answers(): Record<string, number> {
    const counts: Record<string, number> = {}
    for (const p of this.probes) counts[String(p.status)] = (counts[String(p.status)] ?? 0) + 1
    return counts
  }

  /** When readyz first answered anything but 200 at or after `t`, or null. */
  notReadySince(t: number): number | null {
    return this.probes.find((p) => p.t >= t && p.status !== 200)?.t ?? null
  }

  /** When readyz first answered 200 for a request sent at or after `t`, or null. */
  readySince(t: number): number | null {
    return this.probes.find((p) => p.t - p.ms >= t && p.status === 200)?.t ?? null
  }

  /** Ends the polling. */
  stop(): void {
    this.stopped = true
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      const sent = Date.now()
      let status: number | 'error' = 'error'
      try {
        const res = await fetch(`${this.origin}/foreman/readyz`, { signal: AbortSignal.timeout(this.timeoutMs) })
        status = res.status
        await res.text()
      } catch {}
      const ms = Date.now() - sent
      this.probes.push({ t: Date.now(), status, ms })
      if (ms >= this.timeoutMs * 0.9) this.hung.push(`readyz: ${ms} ms`)
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
  }
}
