/**
 * Scenario 4: the server dies under load. kill -9 of the Foreman process 10
 * times in a minute (reduced: 3 in 15 s), restarted at once on the same port;
 * then SIGTERM under load, which must exit 0 and leave no job active without a
 * live lease. Workers and the producer ride through the gaps by re-sending
 * (every job carries an idempotency key; an outcome whose answer was lost is
 * sent again and answers 409 if it had landed).
 */
import { afterAll, expect, test } from 'bun:test'
import { tablesFor } from '../../src/db/tables'
import { openSql } from './support/db-state'
import { figuresOf, writeFigures } from './support/figures'
import { killAll, sleep } from './support/processes'
import { cancelRandomly, produce } from './support/producer'
import { Recorder } from './support/record'
import { scale, TEST_TIMEOUT_MS } from './support/scale'
import { drain, dropPrefix, prefixFor, testDatabaseUrl, verify } from './support/scenario'
import { ForemanServer } from './support/server'
import { InProcessWorkers } from './support/workers'

const S = scale(
  { workers: 8, jobs: 8_000, produceMs: 75_000, kills: 10, killWindowMs: 60_000 },
  { workers: 4, jobs: 600, produceMs: 20_000, kills: 3, killWindowMs: 15_000 },
)
const url = testDatabaseUrl()
const prefix = prefixFor('s4')
afterAll(async () => {
  await killAll()
  await dropPrefix(url, prefix)
})

/** Active jobs without a running run whose lease is still in the future, read straight from the tables. */
async function activeWithoutLiveLease(): Promise<string[]> {
  const sql = openSql(url)
  const t = tablesFor(prefix)
  try {
    const rows = await sql<{ id: string }[]>`
      select j.id from ${sql(t.jobs)} j
      where j.status = 'active' and not exists (
        select 1 from ${sql(t.runs)} r
        where r.job_id = j.id and r.status = 'running' and r.lease_expires_at > now())`
    return rows.map((r) => r.id)
  } finally {
    await sql.end({ timeout: 5 })
  }
}

test(
  `scenario 4: the server killed -9 ${S.kills} times under load and restarted, then SIGTERM: exit 0, nothing lost`,
  async () => {
    const began = Date.now()
    const server = new ForemanServer({ databaseUrl: url, prefix, name: 's4' })
    await server.start()
    const recorder = new Recorder()
    const workers = new InProcessWorkers(recorder)
    for (let i = 0; i < S.workers; i++) {
      workers.start({
        origin: server.origin,
        workerId: `s4-w${i}`,
        kinds: ['s4'],
        maxBatch: 50,
        leaseSec: [5, 5],
        handlerMs: [10, 600],
        failRate: 0.05,
        permanentRate: 0,
        overrunRate: 0,
        overrunExtraMs: 0,
        manyRate: 0.5,
        waitSeconds: 1,
        timeoutMs: 10_000,
      })
    }
    // Cancels go on through the faults too: a cancel whose answer was lost is part of the history.
    const stopCancels = new AbortController()
    const cancelling = cancelRandomly([server.origin], recorder, 100, stopCancels.signal)
    const producing = produce(
      {
        origins: [server.origin],
        kind: 's4',
        count: S.jobs,
        keyPrefix: prefix,
        batch: 50,
        overMs: S.produceMs,
        maxAttempts: 10,
        minAttempts: 5,
      },
      recorder,
    )
    // Recovery: from each kill until the first complete accepted after it.
    const kills: number[] = []
    const restartMs: number[] = []
    for (let k = 0; k < S.kills; k++) {
      await sleep(S.killWindowMs / S.kills - 1000 + Math.random() * 1000)
      kills.push(Date.now())
      recorder.add({ op: 'fault', t: Date.now(), kind: 'server kill -9', target: String(server.pid) })
      await server.kill9()
      const down = Date.now()
      await server.start()
      restartMs.push(Date.now() - down)
    }
    // SIGTERM while the producer and workers are still busy.
    await sleep(1500)
    recorder.add({ op: 'fault', t: Date.now(), kind: 'server SIGTERM', target: String(server.pid) })
    const exitCode = await server.terminate()
    const stranded = await activeWithoutLiveLease()
    await server.start()
    await producing
    const drained = await drain(url, prefix, scale(300_000, 120_000))
    stopCancels.abort()
    await cancelling
    await workers.stopAll()
    await server.stop()

    const { result } = await verify('s4', recorder, url, prefix)
    const accepted = recorder
      .of('complete')
      .filter((c) => c.answer === 200)
      .map((c) => c.t)
      .sort((a, b) => a - b)
    const recoveries = kills.map((k) => (accepted.find((t) => t > k) ?? Number.POSITIVE_INFINITY) - k)
    writeFigures(
      figuresOf(
        {
          scenario: 's4-server-kill',
          title: `Server kill -9 ×${S.kills} in ${S.killWindowMs / 1000} s under load (${S.jobs.toLocaleString('en-US')} jobs), each restarted; then SIGTERM under load`,
          faults: {
            'server kill -9': kills.length,
            'server SIGTERM': 1,
            'retryable failure': recorder.of('fail').filter((f) => f.answer === 200 && f.retryable).length,
            'cancel of a pending or active job': recorder
              .of('cancel')
              .filter((c) => c.status === 'cancelled' || c.status === 'cancel_requested').length,
          },
          maxRecoveryMs: Math.max(...recoveries),
          recovery: 'server kill → first complete accepted by the restarted server',
          durationMs: Date.now() - began,
          serverFivexx: server.fivexx,
          extra: {
            sigtermExitCode: exitCode,
            activeWithoutLiveLeaseAfterSigterm: stranded.length,
            maxRestartMs: Math.max(...restartMs),
          },
        },
        result,
      ),
    )
    expect(exitCode).toBe(0)
    expect(stranded).toEqual([])
    expect(drained).toBe(true)
    expect(result.violations).toEqual([])
    expect(result.jobs).toBe(S.jobs)
  },
  TEST_TIMEOUT_MS,
)
