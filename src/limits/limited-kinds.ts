/**
 * This process's view of which kinds have limits: it decides only whether a
 * claim also tries the limited claim, and which run ends wake long-poll claimers.
 * It can be up to a second stale. That costs latency, never a limit: the plain
 * claim itself skips every kind with limits (its probe of the limits table), and
 * the limited claim of a kind that lost its limits takes nothing, so the plain
 * claim, tried after it, takes the job. A change of limits on any instance is
 * announced (NOTIFY on `<prefix>limits`, see announceLimitsChanged) and every
 * instance reloads at its next claim; the second is for a missed notification.
 */
import type { Sql } from '../db/client'
import type { Tables } from '../db/tables'
import { unlistenWithin } from '../events/hub'

/** The NOTIFY channel that says "limits changed" to every instance on these tables. */
export const limitsChannelFor = (tables: Tables) => `${tables.prefix}limits`

/** Tells every instance (this one included, through its LISTEN) that `kind`'s limits changed. */
export async function announceLimitsChanged(sql: Sql, tables: Tables, kind: string): Promise<void> {
  await sql`select pg_notify(${limitsChannelFor(tables)}, ${kind})`
}

/** How old the set may be before a claim reloads it. */
const MAX_AGE_MS = 1000

export class LimitedKinds {
  private kinds = new Set<string>()
  private unlisten: (() => Promise<void>) | undefined
  private loadedAt = Number.NEGATIVE_INFINITY
  private loading: Promise<void> | null = null
  /** Bumped by forget(): a read that began before it does not count as fresh. */
  private generation = 0

  constructor(
    private readonly sql: Sql,
    private readonly tables: Tables,
    /** Where LISTEN goes: a session of its own behind a transaction pooler (db/connections.ts). */
    private readonly listenSql: Sql = sql,
  ) {}

  /**
   * Listens for changes of limits on any instance. Each one (and a re-listen,
   * which may have missed some) reloads the set at once, not at the next claim:
   * has(), which decides what wakes a waiting claimer, must know a kind that just
   * gained limits while that claimer sleeps.
   */
  async start(): Promise<void> {
    const reloadNow = () => {
      this.forget()
      // After any read already under way: it may have begun before the change.
      ;(this.loading ?? Promise.resolve())
        .catch(() => {})
        .then(() => this.reload())
        .catch(() => {})
    }
    const handle = await this.listenSql.listen(limitsChannelFor(this.tables), reloadNow, reloadNow)
    this.unlisten = handle.unlisten
  }

  /** Stops listening; gives up after `waitMs` on a connection that no longer answers (the hub does the same). */
  async stop(waitMs: number): Promise<void> {
    await unlistenWithin(this.unlisten, waitMs)
    this.unlisten = undefined
  }

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
    this.generation++
  }

  private reload(): Promise<void> {
    this.loading ??= (async () => {
      try {
        const started = performance.now()
        const generation = this.generation
        const rows = await this.sql<{ kind: string }[]>`select kind from ${this.sql(this.tables.limits)}`
        this.kinds = new Set(rows.map((r) => r.kind))
        if (generation === this.generation) this.loadedAt = started
      } finally {
        this.loading = null
      }
    })()
    return this.loading
  }
}
