/**
 * Samples how many Postgres connections the instances hold, from
 * pg_stat_activity, every ~200 ms for the whole run. Each instance names its
 * connections `<name>` (query pool and postgres.js' LISTEN connection) and
 * `<name>-notify`, so the count is per instance and nothing else on the server
 * (the test's own observer) is counted.
 */
import type { Sql } from '../../src/db/client'

/** The most connections seen at once: in total and per instance name. */
export interface ConnectionPeaks {
  total: number
  perInstance: Record<string, number>
  samples: number
}

/** Samples until stopped; one query at a time, so a slow sample delays the next rather than piling up. */
export class ConnectionSampler {
  private readonly peaks: ConnectionPeaks = { total: 0, perInstance: {}, samples: 0 }
  private stopped = false
  private readonly loop: Promise<void>
  readonly errors: string[] = []

  constructor(
    private readonly sql: Sql,
    private readonly names: string[],
    private readonly everyMs = 200,
  ) {
    this.loop = this.run()
  }

  /** Stops sampling; answers the peaks. */
  async stop(): Promise<ConnectionPeaks> {
    this.stopped = true
    await this.loop
    return this.peaks
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      try {
        await this.sample()
      } catch (error) {
        this.errors.push(String(error))
      }
      await Bun.sleep(this.everyMs)
    }
  }

  private async sample(): Promise<void> {
    const rows = await this.sql<{ name: string; n: number }[]>`
      select application_name as name, count(*)::int as n from pg_stat_activity
      where application_name = any(${this.names.flatMap((name) => [name, `${name}-notify`])}::text[])
      group by application_name`
    let total = 0
    const perInstance: Record<string, number> = {}
    for (const { name, n } of rows) {
      const instance = name.replace(/-notify$/, '')
      perInstance[instance] = (perInstance[instance] ?? 0) + n
      total += n
    }
    this.peaks.samples++
    this.peaks.total = Math.max(this.peaks.total, total)
    for (const [name, n] of Object.entries(perInstance)) {
      this.peaks.perInstance[name] = Math.max(this.peaks.perInstance[name] ?? 0, n)
    }
  }
}
