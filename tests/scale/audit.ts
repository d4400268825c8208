/**
 * A test-only record of every state a job row took, written by the database
 * itself (the idea of flow-concurrency.test.ts's audit), so what the SSE streams
 * sent can be checked against what really happened rather than against the
 * final rows alone.
 *
 * Statement-level triggers with transition tables, not row triggers: one insert
 * per statement whatever its size (a batch enqueue of 500 rows, a batch claim of
 * 10), so the audit weighs as little as it can on the throughput the run reports.
 */
import type { Sql } from '../../src/db/client'
import type { Tables } from '../../src/db/tables'

/** A state as the event feed stamps it: the row's updated_at to the microsecond (see events/sql.ts). */
const VERSION = `to_char(n.updated_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** One recorded state of a job. */
export interface AuditedState {
  job_id: string
  kind: string
  queue: string
  status: string
  version: string
}

/** The audit of one table prefix: start it before the load, read it after, drop it at the end. */
export class JobAudit {
  private readonly table: string

  constructor(
    private readonly sql: Sql,
    private readonly tables: Tables,
  ) {
    this.table = `${tables.prefix}scale_audit`
  }

  /** Creates the table and the triggers on the jobs table (inserts and updates). */
  async start(): Promise<void> {
    const { sql, table } = this
    const jobs = this.tables.jobs
    await sql.unsafe(`create table ${table} (job_id text, kind text, queue text, status text, version text)`)
    await sql.unsafe(`create function ${table}_note() returns trigger language plpgsql as $$ begin
      insert into ${table} select n.id, n.kind, n.queue, n.status, ${VERSION} from changed n;
      return null; end $$`)
    // A transition table serves one event per trigger: one for inserts, one for updates.
    for (const event of ['insert', 'update']) {
      await sql.unsafe(`create trigger ${table}_${event} after ${event} on ${jobs}
        referencing new table as changed for each statement execute function ${table}_note()`)
    }
  }

  /** Every recorded state, in no particular order. */
  async states(): Promise<AuditedState[]> {
    return [
      ...(await this.sql<AuditedState[]>`select job_id, kind, queue, status, version from ${this.sql(this.table)}`),
    ]
  }

  /** Drops the triggers (with their function) and the table. */
  async stop(): Promise<void> {
    await this.sql.unsafe(`drop function if exists ${this.table}_note() cascade`)
    await this.sql.unsafe(`drop table if exists ${this.table}`)
  }
}
