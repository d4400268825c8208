/**
 * Scenario 2: lease overrun. Leases of 1–3 s; a fifth of the handlers overrun
 * theirs without a heartbeat and complete `reaper interval + 1.5 s` after it ran
 * out, when the reaper has abandoned the run and another worker may hold the
 * job. That late complete must answer 409 and change nothing; the others
 * heartbeat every third of their lease and keep it.
 */
import { afterAll, expect, test } from 'bun:test'
import { figuresOf, writeFigures } from './support/figures'
import { killAll } from './support/processes'
import { produce } from './support/producer'
import { Recorder } from './support/record'
import { REAPER_INTERVAL_SEC, scale, TEST_TIMEOUT_MS } from './support/scale'
import { drain, dropPrefix, prefixFor, testDatabaseUrl, verify } from './support/scenario'
import { ForemanServer } from './support/server'
import { InProcessWorkers } from './support/workers'

const S = scale({ workers: 32, jobs: 4_000, produceMs: 40_000 }, { workers: 8, jobs: 300, produceMs: 6_000 })
const OVERRUN_EXTRA_MS = REAPER_INTERVAL_SEC * 1000 + 1500
const url = testDatabaseUrl()
const prefix = prefixFor('s2')
afterAll(async () => {
  await killAll()
  await dropPrefix(url, prefix)
})

test(
  `scenario 2: leases of 1–3 s, a fifth of ${S.jobs} handlers overrun; each late complete answers 409 and changes nothing`,
  async () => {
    const began = Date.now()
    const server = new ForemanServer({ databaseUrl: url, prefix, name: 's2' })
    await server.start()
    const recorder = new Recorder()
    const workers = new InProcessWorkers(recorder)
    for (let i = 0; i < S.workers; i++) {
      workers.start({
        origin: server.origin,
        workerId: `s2-w${i}`,
        kinds: ['s2'],
        maxBatch: 30,
        leaseSec: [1, 3],
        handlerMs: [10, 1200],
        failRate: 0.05,
        permanentRate: 0,
        overrunRate: 0.2,
        overrunExtraMs: OVERRUN_EXTRA_MS,
        manyRate: 0.3,
        waitSeconds: 1,
        timeoutMs: 30_000,
      })
    }
    await produce(
      {
        origins: [server.origin],
        kind: 's2',
        count: S.jobs,
        keyPrefix: prefix,
        batch: 50,
        overMs: S.produceMs,
        maxAttempts: 5,
      },
      recorder,
    )
    const drained = await drain(url, prefix, scale(300_000, 120_000))
    await workers.stopAll()
    await server.stop()

    const { result, state } = await verify('s2', recorder, url, prefix)
    const overruns = new Set(
      recorder
        .of('finish')
        .filter((f) => f.overrun)
        .map((f) => f.run),
    )
    const late = recorder.of('complete').filter((c) => overruns.has(c.run))
    const runStatus = new Map(state.runs.map((r) => [r.id, r.status]))
    const accepted = late.filter((c) => c.answer !== 409)
    const changed = late.filter((c) => runStatus.get(c.run) !== 'abandoned')
    writeFigures(
      figuresOf(
        {
          scenario: 's2-lease-overrun',
          title: `Lease overrun: leases 1–3 s, a fifth of the handlers overrun (${S.jobs.toLocaleString('en-US')} jobs, ${S.workers} workers)`,
          faults: {
            'handler overran its lease': overruns.size,
            'retryable failure': recorder.of('fail').filter((f) => f.answer === 200).length,
          },
          maxRecoveryMs: null,
          recovery: 'no outage in this scenario',
          durationMs: Date.now() - began,
          serverFivexx: server.fivexx,
          extra: {
            lateCompletes: late.length,
            lateCompletesAccepted: accepted.length,
            lateCompletesThatChangedTheRun: changed.length,
            heartbeats: recorder.of('heartbeat').length,
          },
        },
        result,
      ),
    )
    expect(drained).toBe(true)
    expect(result.violations).toEqual([])
    expect(overruns.size).toBeGreaterThan(0)
    expect(late.length).toBe(overruns.size)
    expect(accepted.map((c) => `${c.job}/${c.run}: ${c.answer}`)).toEqual([])
    expect(changed.map((c) => `${c.job}/${c.run}: ${runStatus.get(c.run)}`)).toEqual([])
  },
  TEST_TIMEOUT_MS,
)
