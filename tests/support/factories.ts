/** Small factories so tests read like the rules they check. */
import { expect } from 'bun:test'
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
