/**
 * The checker catches what it is there to catch: each invariant broken on
 * purpose in a small made-up history, and a clean history passing.
 */
import { describe, expect, test } from 'bun:test'
import { GIVEN_BACK } from '../../src/runs/sql/give-back'
import { check } from './support/checker'
import type { DbJob, DbRun, DbState } from './support/db-state'
import { type Rec, Recorder } from './support/record'

const T = Date.parse('2026-12-03T06:00:00.000Z')
const iso = (ms: number) => new Date(ms).toISOString()

function job(over: Partial<DbJob> = {}): DbJob {
  return {
    id: 'job_1',
    kind: 'k',
    status: 'succeeded',
    key: 'key-1',
    attempt_count: 1,
    max_attempts: 3,
    cancel_requested: false,
    result: { run: 'run_1' },
    ...over,
  }
}

function run(over: Partial<DbRun> = {}): DbRun {
  return {
    id: 'run_1',
    job_id: 'job_1',
    attempt: 1,
    worker_id: 'w1',
    status: 'succeeded',
    started_ms: T + 10,
    finished_ms: T + 50,
    error: null,
    ...over,
  }
}

/** A clean history: enqueued, claimed by w1 with a 30 s lease, handler finished, completed. */
function cleanHistory(): Rec[] {
  return [
    { op: 'enqueue', t: T, job: 'job_1', key: 'key-1', created: true },
    { op: 'claim', t: T + 11, worker: 'w1', job: 'job_1', run: 'run_1', attempt: 1, lease: iso(T + 30_010) },
    { op: 'start', t: T + 11, worker: 'w1', job: 'job_1', run: 'run_1' },
    { op: 'finish', t: T + 40, worker: 'w1', job: 'job_1', run: 'run_1' },
    { op: 'complete', t: T + 51, sent: T + 41, worker: 'w1', job: 'job_1', run: 'run_1', answer: 200 },
  ]
}

function verdict(recs: Rec[], state: DbState): string[] {
  const recorder = new Recorder()
  for (const r of recs) recorder.add(r)
  return check(recorder, state).violations
}

describe('the fault-suite checker', () => {
  test('passes a clean history', () => {
    expect(verdict(cleanHistory(), { jobs: [job()], runs: [run()] })).toEqual([])
  })

  test('a claim given back (its client left before the answer) is not an attempt', () => {
    const givenBack = run({ id: 'run_0', attempt: 0, worker_id: 'w0', status: 'abandoned', error: GIVEN_BACK })
    const state = {
      jobs: [job()],
      runs: [{ ...givenBack, started_ms: T + 2, finished_ms: T + 5 }, run()],
    }
    expect(verdict(cleanHistory(), state)).toEqual([])
  })

  test('a job still pending at the end is lost', () => {
    const state = { jobs: [job({ status: 'pending', result: null })], runs: [run({ status: 'failed' })] }
    expect(verdict(cleanHistory().slice(0, 4), state).join()).toContain('lost')
  })

  test('a job nobody enqueued is unexpected', () => {
    const state = { jobs: [job(), job({ id: 'job_2', key: 'other', attempt_count: 0, result: null })], runs: [run()] }
    expect(verdict(cleanHistory(), state).join()).toContain('nobody enqueued')
  })

  test('two runs overlapping under a live lease are caught', () => {
    const history: Rec[] = [
      ...cleanHistory().slice(0, 3),
      { op: 'claim', t: T + 1000, worker: 'w2', job: 'job_1', run: 'run_2', attempt: 2, lease: iso(T + 31_000) },
      { op: 'finish', t: T + 1100, worker: 'w2', job: 'job_1', run: 'run_2' },
      { op: 'complete', t: T + 1200, sent: T + 1100, worker: 'w2', job: 'job_1', run: 'run_2', answer: 200 },
    ]
    const state = {
      jobs: [job({ attempt_count: 2, result: { run: 'run_2' } })],
      runs: [
        run({ status: 'abandoned', finished_ms: T + 990 }),
        run({ id: 'run_2', attempt: 2, worker_id: 'w2', started_ms: T + 995, finished_ms: T + 1150 }),
      ],
    }
    // Abandoned while its lease was live: the reaper's fault, reported as such.
    expect(verdict(history, state).join('\n')).toContain('abandoned 29020 ms before its lease ran out')
    // Run 2 began while run 1 was still running (it failed later).
    const overlapping = {
      jobs: [job({ attempt_count: 2, result: { run: 'run_2' } })],
      runs: [
        run({ status: 'failed', finished_ms: T + 1500 }),
        run({ id: 'run_2', attempt: 2, worker_id: 'w2', started_ms: T + 995, finished_ms: T + 1600 }),
      ],
    }
    expect(verdict(history, overlapping).join('\n')).toContain('before run_1 ended (live lease)')
  })

  test('a succeeded job whose handler never finished is caught', () => {
    const history = cleanHistory().filter((r) => r.op !== 'finish')
    expect(verdict(history, { jobs: [job()], runs: [run()] }).join()).toContain('handler never finished')
  })

  test('a 409 that changed the run, and a 200 that did not, are caught', () => {
    const refused = cleanHistory().map((r) => (r.op === 'complete' ? { ...r, answer: 409 } : r))
    expect(verdict(refused, { jobs: [job()], runs: [run()] }).join()).toContain('answered 409')
    const state = { jobs: [job({ status: 'failed', result: null })], runs: [run({ status: 'abandoned' })] }
    expect(verdict(cleanHistory(), state).join()).toContain('answered 200, run is abandoned')
  })

  test('attempts that go backwards, and two successes, are caught', () => {
    const history: Rec[] = [
      ...cleanHistory(),
      { op: 'claim', t: T + 5, worker: 'w2', job: 'job_1', run: 'run_2', attempt: 2, lease: iso(T + 30_000) },
    ]
    const state = {
      jobs: [job({ attempt_count: 2 })],
      runs: [run(), run({ id: 'run_2', attempt: 2, worker_id: 'w2', started_ms: T + 60, finished_ms: T + 70 })],
    }
    const found = verdict(history, state).join('\n')
    expect(found).toContain('attempt 1 claimed')
    expect(found).toContain('2 succeeded runs')
  })
})
