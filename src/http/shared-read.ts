/**
 * Reads that many callers may share: the operator views (GET /queues, /workers,
 * /stats, /database) aggregate over the live backlog and the last hour, and every
 * open console asks for them again after changes. A caller that says an answer up
 * to `max_age_seconds` old will do gets the last one read in this process (or the
 * one in flight) when it is young enough, so ten consoles cost the database about
 * what one does. Callers that say nothing (max age 0) always read afresh.
 */
import { t } from 'elysia'
import { InvalidInput } from '../errors'

/** The most a caller may accept: longer would show an overview that is not live. */
export const MAX_SHARED_AGE_SECONDS = 60

/**
 * `?max_age_seconds=`: how old an answer the caller accepts. The range is checked
 * by maxAgeOf, not the schema: Elysia's refusal of a coerced query number out of
 * its bounds does not say which field it was.
 */
export const MaxAgeQuery = t.Object({
  max_age_seconds: t.Optional(
    t.Integer({
      description: `Accept an answer read up to this many seconds ago by another request to this instance (0–${MAX_SHARED_AGE_SECONDS}; default 0, read now). The console asks for 2, so open consoles share one read.`,
    }),
  ),
})

/** The accepted age from `?max_age_seconds=`; a 400 naming it outside 0–60. */
export function maxAgeOf(query: { max_age_seconds?: number }): number {
  const age = query.max_age_seconds ?? 0
  if (age < 0 || age > MAX_SHARED_AGE_SECONDS)
    throw new InvalidInput('max_age_seconds', `must be between 0 and ${MAX_SHARED_AGE_SECONDS}`)
  return age
}

interface Taken<T> {
  startedAt: number
  value: Promise<T>
}

/** A read shared by callers that accept an older answer (see sharedReads). */
export interface SharedReads<K, T> {
  /** The answer for `key`: the latest read started at most `maxAgeSeconds` ago, else a new one. */
  read(key: K, maxAgeSeconds?: number): Promise<T>
  /** Forgets every answer, after a change this process made (a pause) that callers expect to see. */
  forget(): void
}

/**
 * Wraps `read(key)` so that a call accepting `maxAgeSeconds` shares the latest read
 * of the same key started no longer ago than that (finished or still in flight). A
 * failed read is shared only by the calls already waiting on it.
 */
export function sharedReads<K, T>(read: (key: K) => Promise<T>): SharedReads<K, T> {
  const latest = new Map<K, Taken<T>>()
  return {
    read(key, maxAgeSeconds = 0) {
      const now = performance.now()
      const last = latest.get(key)
      if (last && maxAgeSeconds > 0 && now - last.startedAt <= maxAgeSeconds * 1000) return last.value
      const taken = { startedAt: now, value: read(key) }
      latest.set(key, taken)
      taken.value.catch(() => {
        if (latest.get(key) === taken) latest.delete(key)
      })
      return taken.value
    },
    forget() {
      latest.clear()
    },
  }
}
