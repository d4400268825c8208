/**
 * A job wherever it is: the hot table or history (migrations/009). The move is
 * one statement, so one statement's snapshot sees a job in exactly one of the
 * two; a statement that reads both through this fragment finds it once.
 */
import type { Fragment, Queryable } from '../db/client'
import type { Tables } from '../db/tables'

/** A list of plain column names, as jobColumns(sql) gives it. */
export type ColumnList = ReturnType<Queryable['unsafe']>

/**
 * A FROM item (alias it) with `columns` (a list of plain column names, as
 * jobColumns gives) of every job, hot and history. Joined by id, Postgres
 * probes each side's primary key (history's leads with id), so a lookup by id
 * costs one probe per table (one per history partition), not a scan.
 */
export function jobsHotAndHistory(sql: Queryable, t: Tables, columns: ColumnList): Fragment {
  return sql`(
    select ${columns} from ${sql(t.jobs)}
    union all
    select ${columns} from ${sql(t.jobsHistory)}
  )`
}
