/**
 * A worker on the real TS client (ForemanClient) that records every step:
 * claims of a random batch size, handlers that take a random time and keep
 * their lease with heartbeats, random retryable and permanent failures,
 * handlers that overrun their lease without heartbeating (scenario 2), and
 * completes one by one or as a batch. An outcome whose answer was lost (no
 * answer, or a 5xx) is sent again: the record keeps every try.
 */

import type { Claimed } from '../../../src/client/client'
import { ForemanClient } from '../../../src/client/client'
import { sleep } from '../../../src/client/worker-support'
import { type Answer, answerOf, type Sink } from './record'

/** What a worker does; every range is [min, max] inclusive. */
export interface WorkerPlan {
  origin: string
  workerId: string
  kinds: string[]
  /** Claims ask for a random 1..maxBatch jobs. */
  maxBatch: number
  leaseSec: [number, number]
  handlerMs: [number, number]
  /** Probability of a retryable failure. */
  failRate: number
  /** Backoff of a retryable failure in seconds (default [0, 0]: retry at once). */
  retryBackoffSec?: [number, number]
  /** Probability of a permanent failure. */
  permanentRate: number
  /** Probability a handler overruns: no heartbeats, finishes `overrunExtraMs` after its lease. */
  overrunRate: number
  overrunExtraMs: number
  /** Probability a batch's completes go in one POST /runs/complete. */
  manyRate: number
  waitSeconds: number
  /** Client timeout per request. */
  timeoutMs: number
}

/** A request slower than this beyond its wait is recorded. */
const SLOW_MS = 5000
const pick = ([min, max]: [number, number]) => min + Math.floor(Math.random() * (max - min + 1))

type Outcome = { kind: 'complete' } | { kind: 'fail'; retryable: boolean } | { kind: 'none' }

/** Runs the worker until `signal` aborts; jobs already claimed are finished first. */
export async function runWorker(plan: WorkerPlan, record: Sink, signal: AbortSignal): Promise<void> {
  const client = new ForemanClient({ baseUrl: plan.origin, timeoutMs: plan.timeoutMs, retries: 0 })
  const worker = plan.workerId
  const queued: Claimed[] = []
  let flushing: Promise<void> | undefined
  while (!signal.aborted) {
    const lease = pick(plan.leaseSec)
    const sent = Date.now()
    let claimed: Claimed[]
    try {
      claimed = await client.claimMany(
        {
          kinds: plan.kinds,
          worker_id: worker,
          max_jobs: pick([1, plan.maxBatch]),
          lease_seconds: lease,
          wait_seconds: plan.waitSeconds,
        },
        signal,
      )
    } catch (error) {
      if (signal.aborted) break
      record({ op: 'claim-error', t: Date.now(), worker, answer: answerOf(error), ms: Date.now() - sent })
      slow('claim', answerOf(error), sent, plan.waitSeconds * 1000)
      await sleep(200)
      continue
    }
    slow('claim', 200, sent, plan.waitSeconds * 1000)
    const t = Date.now()
    for (const { job, run } of claimed) {
      record({ op: 'claim', t, worker, job: job.id, run: run.id, attempt: run.attempt, lease: run.lease_expires_at! })
    }
    const many = Math.random() < plan.manyRate
    await Promise.all(
      claimed.map(async (c) => {
        if ((await execute(c, lease, !many)).kind === 'complete') await queueComplete(c)
      }),
    )
  }

  /**
   * Batched completes: handlers that end within the same 5 ms go in one
   * POST /runs/complete (waiting for the whole claim batch would hold finished
   * jobs past their lease, their heartbeats having stopped).
   */
  function queueComplete(c: Claimed): Promise<void> {
    queued.push(c)
    flushing ??= new Promise<void>((resolve) =>
      setTimeout(() => {
        const batch = queued.splice(0)
        flushing = undefined
        completeMany(batch).then(resolve)
      }, 5),
    )
    return flushing
  }

  /** Runs one job; answers what is left to report (a batched complete), having reported everything else. */
  async function execute({ job, run }: Claimed, lease: number, single: boolean): Promise<Outcome> {
    const ids = { worker, job: job.id, run: run.id }
    record({ op: 'start', t: Date.now(), ...ids })
    const overrun = Math.random() < plan.overrunRate
    const duration = overrun ? lease * 1000 + plan.overrunExtraMs : pick(plan.handlerMs)
    const handler = new AbortController()
    let lost = false
    let cancelled = false
    const beats = overrun ? Promise.resolve() : keepLease()
    await sleep(duration, handler.signal)
    const stopBeats = handler.signal.aborted
    handler.abort()
    await beats
    if (lost) {
      record({ op: 'lost', t: Date.now(), ...ids })
      return { kind: 'none' }
    }
    if (!stopBeats) record({ op: 'finish', t: Date.now(), ...ids, overrun: overrun || undefined })
    // An overrunning handler always completes: that late complete is what scenario 2 checks.
    const roll = overrun ? 1 : Math.random()
    const outcome: Outcome = cancelled
      ? { kind: 'fail', retryable: false }
      : roll < plan.permanentRate
        ? { kind: 'fail', retryable: false }
        : roll < plan.permanentRate + plan.failRate
          ? { kind: 'fail', retryable: true }
          : { kind: 'complete' }
    if (outcome.kind === 'fail') {
      const body = {
        worker_id: worker,
        error: cancelled ? 'cancel requested' : 'injected failure',
        backoff_seconds: pick(plan.retryBackoffSec ?? [0, 0]),
      }
      await send(
        (s) => ({ op: 'fail', ...s, ...ids, retryable: outcome.retryable }),
        () => client.fail(run.id, { ...body, retryable: outcome.retryable }),
      )
      return { kind: 'none' }
    }
    if (single || overrun) {
      await send(
        (s) => ({ op: 'complete', ...s, ...ids }),
        () => client.complete(run.id, { worker_id: worker, result: { run: run.id, worker } }),
      )
      return { kind: 'none' }
    }
    return outcome

    /** Heartbeats every third of the lease until the handler ends; a refused one ends the handler. */
    async function keepLease(): Promise<void> {
      for (;;) {
        await sleep((lease * 1000) / 3, handler.signal)
        if (handler.signal.aborted) return
        const sentAt = Date.now()
        try {
          const beat = await client.heartbeat(run.id, { worker_id: worker, lease_seconds: lease })
          record({
            op: 'heartbeat',
            t: Date.now(),
            ...ids,
            answer: 200,
            lease: beat.lease_expires_at ?? undefined,
            st: beat.updated_at,
            cancel: beat.cancel_requested || undefined,
          })
          if (beat.cancel_requested) {
            cancelled = true
            return handler.abort()
          }
        } catch (error) {
          const answer = answerOf(error)
          record({ op: 'heartbeat', t: Date.now(), ...ids, answer })
          slow('heartbeat', answer, sentAt)
          if (answer === 409 || answer === 404) {
            lost = true
            return handler.abort()
          }
        }
      }
    }
  }

  /** Sends an outcome until an answer arrives that is not a 5xx (at most 8 tries over ~15 s). */
  async function send(rec: (s: { t: number; sent: number; answer: Answer }) => any, call: () => Promise<unknown>) {
    for (let attempt = 0; attempt < 8; attempt++) {
      const sent = Date.now()
      let answer: Answer = 200
      try {
        await call()
      } catch (error) {
        answer = answerOf(error)
      }
      record(rec({ t: Date.now(), sent, answer }))
      slow('outcome', answer, sent)
      if (answer !== 'error' && answer < 500) return
      await sleep(Math.min(4000, 250 * 2 ** attempt))
    }
  }

  /** One POST /runs/complete for a batch; each run's answer is recorded (all `error` when none came). */
  async function completeMany(batch: Claimed[]): Promise<void> {
    let left = batch
    for (let attempt = 0; attempt < 8 && left.length > 0; attempt++) {
      const sent = Date.now()
      const runs = left.map(({ run }) => ({ run_id: run.id, result: { run: run.id, worker } }))
      let answers: Answer[]
      try {
        answers = (await client.completeMany(worker, runs)).map((o) => o.status)
      } catch (error) {
        answers = left.map(() => answerOf(error))
      }
      const t = Date.now()
      left.forEach(({ job, run }, i) => {
        record({ op: 'complete', t, sent, worker, job: job.id, run: run.id, answer: answers[i] ?? 'error' })
      })
      slow('complete-many', answers[0] ?? 'error', sent)
      left = left.filter((_, i) => answers[i] === 'error' || (answers[i] as number) >= 500)
      if (left.length > 0) await sleep(Math.min(4000, 250 * 2 ** attempt))
    }
  }

  /** Records a call that took over 5 s beyond its wait (scenario 6 reports them; one near its timeout hung). */
  function slow(path: string, answer: Answer, sent: number, waitMs = 0): void {
    const ms = Date.now() - sent - waitMs
    if (ms >= SLOW_MS) record({ op: 'request', t: Date.now(), worker, path, answer, ms })
  }
}
