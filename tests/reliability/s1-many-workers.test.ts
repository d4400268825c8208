/**
 * Scenario 1: many workers, one server. 16 workers claim batches of a random
 * size (1–100) from 20,000 jobs (reduced: 4 workers, 1,000 jobs); handlers fail
 * at random (retryable and permanent) and a canceller cancels random jobs, pending
 * or active, the whole time. The checker then holds every job to the invariants.
 */
import { afterAll, expect, test } from 'bun:test'
import { figuresOf, writeFigures } from './support/figures'
import { killAll } from './support/processes'
import { cancelRandomly, produce } from './support/producer'
import { Recorder } from './support/record'
import { scale, TEST_TIMEOUT_MS } from './support/scale'
import { countBy, drain, dropPrefix, prefixFor, testDatabaseUrl, verify } from './support/scenario'
import { ForemanServer } from './support/server'
import { InProcessWorkers } from './support/workers'

const S = scale(
  { workers: 16, jobs: 20_000, produceMs: 20_000, cancelEveryMs: 15 },
  { workers: 4, jobs: 1_000, produceMs: 3_000, cancelEveryMs: 40 },
)
/** What a cancel met, by the status it answered. */
const CANCEL_LABEL: Record<string, string> = {
  cancelled: 'cancel of a pending job',
  cancel_requested: 'cancel of an active job',
  succeeded: 'cancel of a finished job (no effect)',
  failed: 'cancel of a finished job (no effect)',
}
const url = testDatabaseUrl()
const prefix = prefixFor('s1')
afterAll(async () => {
  await killAll()
  await dropPrefix(url, prefix)
})

test(
  `scenario 1: ${S.workers} workers × ${S.jobs} jobs, random batches, failures and cancels: every job terminal exactly once`,
  async () => {
    const began = Date.now()
    const server = new ForemanServer({ databaseUrl: url, prefix, name: 's1' })
    await server.start()
    const recorder = new Recorder()
    const workers = new InProcessWorkers(recorder)
    for (let i = 0; i < S.workers; i++) {
      workers.start({
        origin: server.origin,
        workerId: `s1-w${i}`,
        kinds: ['s1'],
        maxBatch: 100,
        leaseSec: [30, 30],
        handlerMs: [0, 20],
        failRate: 0.15,
        // Some retries wait: the canceller then also meets jobs pending in backoff.
        retryBackoffSec: [0, 3],
        permanentRate: 0.02,
        overrunRate: 0,
        overrunExtraMs: 0,
        manyRate: 0.5,
        waitSeconds: 1,
        timeoutMs: 30_000,
      })
    }
    const stopCancels = new AbortController()
    const cancelling = cancelRandomly([server.origin], recorder, S.cancelEveryMs, stopCancels.signal)
    await produce(
      {
        origins: [server.origin],
        kind: 's1',
        count: S.jobs,
        keyPrefix: prefix,
        batch: 200,
        overMs: S.produceMs,
        maxAttempts: 4,
      },
      recorder,
    )
    const drained = await drain(url, prefix, scale(300_000, 90_000))
    stopCancels.abort()
    await cancelling
    await workers.stopAll()
    await server.stop()

    const { result } = await verify('s1', recorder, url, prefix)
    const fails = recorder.of('fail').filter((f) => f.answer === 200)
    writeFigures(
      figuresOf(
        {
          scenario: 's1-many-workers',
          title: `${S.workers} workers × ${S.jobs.toLocaleString('en-US')} jobs, random claim batches (1–100), random failures and cancels`,
          faults: {
            'retryable failure': fails.filter((f) => f.retryable).length,
            'permanent failure': fails.filter((f) => !f.retryable).length,
            ...countBy(recorder.of('cancel'), (c) =>
              c.answer === 200 ? (CANCEL_LABEL[c.status ?? ''] ?? null) : null,
            ),
          },
          maxRecoveryMs: null,
          recovery: 'no outage in this scenario',
          durationMs: Date.now() - began,
          serverFivexx: server.fivexx,
          extra: { claims: recorder.of('claim').length },
        },
        result,
      ),
    )
    expect(drained).toBe(true)
    expect(result.violations).toEqual([])
    expect(result.jobs).toBe(S.jobs)
  },
  TEST_TIMEOUT_MS,
)
