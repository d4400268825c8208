/** Small factories so tests read like the rules they check. */
import { expect } from 'bun:test'
import type postgres from 'postgres'
import type { Fixture } from './harness'

let seq = 0
/** A kind nobody else in the file uses, so claims only see this test's jobs. */
export const uniqueKind = (label = 'kind') => `${label}-${Date.now().toString(36)}-${seq++}`

/** Enqueues a job (201 expected) and answers it. */
export async function enqueueJob(f: Fixture, body: Record<string, unknown> = {}) {
  const res = await f.call('POST', '/jobs', { kind: uniqueKind(), ...body })
  expect(res.status).toBe(201)
  return res.body
}

/** Claims one job of `kind` (200 expected) and answers { job, run }. */
export async function claimOne(f: Fixture, kind: string, workerId = 'worker-1', extra: Record<string, unknown> = {}) {
  const res = await f.call('POST', '/claim', { kinds: [kind], worker_id: workerId, ...extra })
  expect(res.status).toBe(200)
  return res.body as { job: any; run: any }
}

/** Seconds from now until an RFC 3339 timestamp. */
export const secondsUntil = (stamp: string) => (Date.parse(stamp) - Date.now()) / 1000

/** POSTs through the fixture and expects a 2xx; answers the body. */
export async function postOk(f: Fixture, path: string, body: unknown) {
  const res = await f.call('POST', path, body)
  expect(res.status).toBeLessThan(300)
  return res.body
}

/** Holds a lock on a run's row, as a concurrent statement would, until the returned function is called. */
export function lockRun(f: Fixture, runId: string): Promise<() => Promise<void>> {
  return holdLock(f, (tx) => tx`select 1 from ${tx(f.tables.runs)} where id = ${runId} for update`)
}

/** Runs `take` (a statement that takes a lock) in a transaction kept open until the returned function is called. */
export async function holdLock(
  f: Fixture,
  take: (tx: postgres.TransactionSql) => Promise<unknown>,
): Promise<() => Promise<void>> {
  let release!: () => void
  let locked!: () => void
  const isLocked = new Promise<void>((resolve) => {
    locked = resolve
  })
  const tx = f.sql.begin(async (tx) => {
    await take(tx)
    locked()
    await new Promise<void>((resolve) => {
      release = resolve
    })
  })
  await isLocked
  return async () => {
    release()
    await tx
  }
}

/** Waits until a statement containing `text` is blocked on a lock. */
export async function blockedOn(f: Fixture, text: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const [row] = await f.sql<{ n: number }[]>`
      select count(*)::int as n from pg_stat_activity
      where wait_event_type = 'Lock' and query like ${`%${text}%`} and pid <> pg_backend_pid()`
    if ((row?.n ?? 0) > 0) return
    await Bun.sleep(10)
  }
  throw new Error(`no statement containing ${text} is waiting on a lock`)
}

/** An answer over a real socket, with when it arrived. */
export interface Timed {
  status: number
  body: any
  /** Date.now() when the answer arrived. */
  at: number
  /** Milliseconds from sending to the answer. */
  elapsed: number
}

/** POSTs JSON to a served Foreman (`base` ends in /foreman) and times the answer. */
export async function postTimed(base: string, path: string, body: unknown): Promise<Timed> {
  const started = Date.now()
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  const at = Date.now()
  return { status: res.status, body: text ? JSON.parse(text) : null, at, elapsed: at - started }
}

export { jobInsertOf } from './job-rows'
