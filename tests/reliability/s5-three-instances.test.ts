/**
 * Scenario 5: three Foreman instances on one database (one table prefix) under
 * load. Workers and the producer spread over the instances; a schedule
 * `@every 2s` is fired by whichever instance's scheduler takes the tick. No
 * job may be claimed twice at once, each schedule slot fires exactly once, and
 * every job's terminal state reaches a `GET /events` subscriber on every
 * instance, whichever instance made the change.
 */
import { afterAll, expect, test } from 'bun:test'
import { ForemanClient } from '../../src/client/client'
import { figuresOf, writeFigures } from './support/figures'
import { killAll, waitFor } from './support/processes'
import { cancelRandomly, produce } from './support/producer'
import { Recorder } from './support/record'
import { scale, TEST_TIMEOUT_MS } from './support/scale'
import { drain, dropPrefix, prefixFor, testDatabaseUrl, verify } from './support/scenario'
import { ForemanServer } from './support/server'
import { StreamWatch } from './support/sse-watch'
import { InProcessWorkers } from './support/workers'

const S = scale({ workers: 6, jobs: 6_000, produceMs: 45_000 }, { workers: 3, jobs: 600, produceMs: 10_000 })
const PERIOD_MS = 2000
const url = testDatabaseUrl()
const prefix = prefixFor('s5')
const streams: StreamWatch[] = []
afterAll(async () => {
  for (const s of streams) s.close()
  await killAll()
  await dropPrefix(url, prefix)
})

test(
  `scenario 5: three instances on one database, ${S.jobs} jobs and a schedule: no double claims, each slot once, events everywhere`,
  async () => {
    const began = Date.now()
    const servers = [0, 1, 2].map(
      (i) =>
        new ForemanServer({
          databaseUrl: url,
          prefix,
          name: `s5-i${i}`,
          env: { FOREMAN_SCHEDULER_INTERVAL_SEC: '0.25' },
        }),
    )
    // One after the other: the first applies the migrations, the others find them applied.
    for (const s of servers) await s.start()
    const origins = servers.map((s) => s.origin)
    for (const [i, origin] of origins.entries()) {
      streams.push(new StreamWatch(`instance ${i}`, `${origin}/foreman/events?kind=s5`))
    }
    await Promise.all(streams.map((s) => s.ready()))
    const recorder = new Recorder()
    const workers = new InProcessWorkers(recorder)
    for (let i = 0; i < S.workers; i++) {
      workers.start({
        origin: origins[i % origins.length]!,
        workerId: `s5-w${i}`,
        kinds: ['s5'],
        maxBatch: 100,
        leaseSec: [10, 10],
        handlerMs: [0, 50],
        failRate: 0.1,
        permanentRate: 0.01,
        overrunRate: 0,
        overrunExtraMs: 0,
        manyRate: 0.5,
        waitSeconds: 1,
        timeoutMs: 30_000,
      })
    }
    const schedule = await new ForemanClient({ baseUrl: origins[0]! }).createSchedule({
      kind: 's5',
      cron_expr: `@every ${PERIOD_MS / 1000}s`,
      max_attempts: 3,
    })
    const schedKey = `sched:${schedule.id}:`
    const stopCancels = new AbortController()
    const cancelling = cancelRandomly(origins, recorder, 50, stopCancels.signal)
    await produce(
      { origins, kind: 's5', count: S.jobs, keyPrefix: prefix, batch: 100, overMs: S.produceMs, maxAttempts: 4 },
      recorder,
    )
    await new ForemanClient({ baseUrl: origins[2]! }).deleteSchedule(schedule.id)
    const drained = await drain(url, prefix, scale(300_000, 90_000))
    stopCancels.abort()
    await cancelling
    await workers.stopAll()

    const { result, state } = await verify('s5', recorder, url, prefix, {
      extra: (job) => job.key?.startsWith(schedKey) ?? false,
    })
    // Every job's terminal state on every instance's stream (the safety poll resyncs within seconds).
    const everyJob = state.jobs.map((j) => j.id)
    await waitFor(() => streams.every((s) => everyJob.every((id) => s.terminal.has(id))), 30_000, 500)
    const missedEvents = streams.map((s) => everyJob.filter((id) => !s.terminal.has(id)).length)
    // A reader reset for falling behind resumes with Last-Event-ID (counted); a clean end is a fault.
    const streamEnds = streams.flatMap((s) =>
      s.ends.filter((e) => e.why === 'ended by the server').map((e) => `${s.name}: ${e.why}`),
    )
    const terminalTwice = streams.flatMap((s) => s.regressions.map((r) => `${s.name}: ${r}`))
    for (const s of streams) s.close()
    for (const s of servers) await s.stop()

    const fires = state.jobs
      .filter((j) => j.key?.startsWith(schedKey))
      .map((j) => Date.parse(j.key!.slice(schedKey.length)))
      .sort((a, b) => a - b)
    const slots = fires.map((t) => Math.round((t - fires[0]!) / PERIOD_MS))
    const offGrid = fires.filter((t) => (t - fires[0]!) % PERIOD_MS !== 0).length
    const repeated = slots.length - new Set(slots).size
    const missedSlots = fires.length === 0 ? 0 : slots[slots.length - 1]! + 1 - new Set(slots).size
    const expectedFires = Math.floor(S.produceMs / PERIOD_MS) - 2
    writeFigures(
      figuresOf(
        {
          scenario: 's5-three-instances',
          title: `Three instances on one database: ${S.jobs.toLocaleString('en-US')} jobs, ${S.workers} workers, a schedule every ${PERIOD_MS / 1000} s`,
          faults: {
            'retryable failure': recorder.of('fail').filter((f) => f.answer === 200 && f.retryable).length,
            cancel: recorder.of('cancel').filter((c) => c.answer === 200).length,
          },
          maxRecoveryMs: null,
          recovery: 'no outage in this scenario',
          durationMs: Date.now() - began,
          serverFivexx: servers.reduce((n, s) => n + s.fivexx, 0),
          extra: {
            instances: servers.length,
            scheduleFires: fires.length,
            scheduleSlotsRepeated: repeated,
            scheduleSlotsMissed: missedSlots,
            eventsPerStream: streams.map((s) => s.events),
            streamReconnects: streams.map((s) => s.ends.length),
            terminalEventsMissedPerStream: missedEvents,
            jobsShownTerminalTwiceOnStreams: terminalTwice.length,
          },
        },
        result,
      ),
    )
    expect(drained).toBe(true)
    expect(result.violations).toEqual([])
    expect(fires.length).toBeGreaterThanOrEqual(expectedFires)
    expect({ repeated, missedSlots, offGrid }).toEqual({ repeated: 0, missedSlots: 0, offGrid: 0 })
    expect(streamEnds).toEqual([])
    expect(terminalTwice).toEqual([])
    expect(missedEvents).toEqual([0, 0, 0])
  },
  TEST_TIMEOUT_MS,
)
