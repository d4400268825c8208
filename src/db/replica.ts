/**
 * Reads by id with a replica in front: a streaming replica lags the primary by
 * whatever it has not replayed yet, so a job enqueued a moment ago may not be
 * there. A miss is the one case a caller can tell apart, so a miss on the
 * replica asks the primary before answering 404: a client that just wrote a
 * job reads it back at once. (A row the replica has, but older, is answered as
 * the replica has it; lists are the replica's alone.)
 */
import type { Deps } from '../deps'
import type { Sql } from './client'

/** `read` on the replica, then on the primary when the replica has nothing; without a replica, once. */
export async function readYourWrite<T>(
  { sql, readSql }: Pick<Deps, 'sql' | 'readSql'>,
  read: (sql: Sql) => Promise<T | null | undefined>,
): Promise<T | null | undefined> {
  const found = await read(readSql)
  if (found != null || readSql === sql) return found
  return read(sql)
}
