/**
 * This process's view of which kinds have limits: it decides only whether a
 * claim also tries the limited claim, and which run ends wake long-poll claimers.
 * It can be up to a second stale. That costs latency, never a limit: the plain
 * claim itself skips every kind with limits (its probe of the limits table), and
 * the limited claim of a kind that lost its limits takes nothing, so the plain
 * claim, tried after it, takes the job.
 */
import type { Sql } from '../db/client'
import type { Tables } from '../db/tables'

/** How old the set may be before a claim reloads it. */
const MAX_AGE_MS = 1000

export class LimitedKinds {
  private kinds = new Set<string>()
  private loadedAt = Number.NEGATIVE_INFINITY
  private loading: Promise<void> | null = null

  constructor(
    private readonly sql: Sql,
    private readonly tables: Tables,
  ) {}

  /** The kinds among `kinds` that have limits, reloading the set when it is older than a second. */
  async among(kinds: readonly string[]): Promise<string[]> {
    if (performance.now() - this.loadedAt > MAX_AGE_MS) await this.reload()
    return kinds.filter((kind) => this.kinds.has(kind))
  }

  /** Whether `kind` had limits when last loaded (no query; for wake-ups). */
  has(kind: string): boolean {
    return this.kinds.has(kind)
  }

  /** Limits changed in this process: the next claim reloads. */
  forget(): void {
    this.loadedAt = Number.NEGATIVE_INFINITY
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const started = performance.now()
        const rows = await this.sql<{ kind: string }[]>`select kind from ${this.sql(this.tables.limits)}`
        this.kinds = new Set(rows.map((r) => r.kind))
        this.loadedAt = started
      } finally {
        this.loading = null
      }
    })()
    return this.loading
  }
}
