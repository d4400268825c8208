/**
 * Claiming: now, or waiting for work (long poll), for a client that may go away
 * meanwhile. Nothing is claimed for a client that has gone, and what a claim took
 * as its client went is given back at once.
 */
import { afterCommit, type Effects } from '../after-commit'
import type { Deps } from '../deps'
import { until } from '../events/service'
import { newRunId } from '../ids'
import { jobNextDueIn } from '../jobs/sql'
import { claimWithinLimits } from '../limits/claim-sql'
import { recordClaimed, recordJobTerminal, recordThrottled } from '../metrics/record'
import type { ClaimBody, Claimed } from './model'
import { type ClaimParams, runClaim } from './sql/claim'
import { runGiveBack } from './sql/give-back'

/**
 * Claims up to `count` eligible jobs for a worker now (best first, possibly none)
 * and announces and counts each. For a client that has gone (`clientSignal`
 * aborted) nothing is claimed; jobs claimed just as it went are given back at once.
 */
function claimJobs(
  deps: Deps,
  body: ClaimBody,
  count: number,
  clientSignal?: AbortSignal,
  reopening?: Reopening,
): Promise<Claimed[]> {
  if (clientSignal?.aborted) return Promise.resolve([])
  return afterCommit(deps, async (effects) => {
    const params = claimParams(deps, body, body.worker_id, count)
    const claimed = await claimLimited(deps, effects, params, reopening)
    if (claimed.length < count) {
      claimed.push(
        ...(await runClaim(deps.sql, deps.tables, { ...params, runIds: params.runIds.slice(claimed.length) })),
      )
    }
    return handOver(deps, effects, claimed, body.worker_id, clientSignal)
  })
}

/** Where a claim that found nothing notes when a rate window that held work back opens. */
interface Reopening {
  at: Date | null
}

/** How many times one claim call goes past keys that gave nothing (at a limit, nothing due) to the next ones. */
const LIMITED_PASSES = 3

/**
 * Claims from the kinds among `params.kinds` that have limits (claimWithinLimits,
 * kind by kind) up to the batch size, before the plain claim takes the rest:
 * a limited kind's jobs can only be had this way, and the plain claim would fill
 * the batch from the unlimited kinds first. Counts what the limits held back.
 */
export async function claimLimited(
  deps: Deps,
  effects: Effects,
  params: ClaimParams,
  reopening?: Reopening,
): Promise<Claimed[]> {
  const claimed: Claimed[] = []
  for (const kind of await deps.events.limitedKinds.among(params.kinds)) {
    for (let pass = 0; pass < LIMITED_PASSES && claimed.length < params.runIds.length; pass++) {
      const runIds = params.runIds.slice(claimed.length)
      const result = await claimWithinLimits(deps.sql, deps.tables, kind, { ...params, runIds })
      claimed.push(...result.claimed)
      effects.count((m) => recordThrottled(m, kind, result.throttled))
      if (reopening && result.reopensAt && (!reopening.at || result.reopensAt < reopening.at)) {
        reopening.at = result.reopensAt
      }
      if (!result.more) break
    }
  }
  return claimed
}

/**
 * What a claim statement took, handed to its client: announced and counted, or,
 * when the client went away while the statement ran, given back in one statement
 * (pending again, the attempt unused; see runGiveBack) and announced as such, so
 * a waiting claimer takes it now rather than the reaper after the lease.
 */
export async function handOver(
  deps: Deps,
  effects: Effects,
  claimed: Claimed[],
  workerId: string,
  clientSignal: AbortSignal | undefined,
): Promise<Claimed[]> {
  if (claimed.length === 0) return claimed
  if (!clientSignal?.aborted) {
    claimEffects(effects, claimed)
    return claimed
  }
  const runIds = claimed.map((c) => c.run.id)
  const jobs = await runGiveBack(deps.sql, deps.tables, { workerId, runIds })
  deps.log.info({ worker_id: workerId, runs: runIds }, 'claim given back: the client went away before the answer')
  effects.announce(jobs)
  // Neither claimed nor run in the counters' sense; only a cancel that landed meanwhile ends a job.
  effects.count((m) => {
    for (const job of jobs) recordJobTerminal(m, job)
  })
  return []
}

/** What a claim of `count` jobs for `workerId` sends: the request's filters, the default lease, fresh run ids. */
export function claimParams(
  { config }: Deps,
  claim: Pick<ClaimBody, 'kinds' | 'queues' | 'lease_seconds'>,
  workerId: string,
  count: number,
): ClaimParams {
  return {
    kinds: claim.kinds,
    queues: claim.queues,
    workerId,
    leaseSec: claim.lease_seconds ?? config.defaultLeaseSec,
    runIds: Array.from({ length: count }, () => newRunId()),
  }
}

/** A claim's effects: each claimed job announced (now active) and counted. */
function claimEffects(effects: Effects, claimed: Claimed[]): void {
  effects.announce(claimed.map((c) => c.job))
  effects.count((m) => {
    for (const c of claimed) recordClaimed(m, c.job, c.run)
  })
}

/**
 * Claims, and with `wait_seconds` waits for work when there is none: woken by a
 * hint that a job of these kinds became pending, or when the earliest not-yet-due
 * job (a scheduled job, a retry in backoff) comes due. Null at the deadline or
 * when the client goes away.
 */
export async function claimJobWaiting(
  deps: Deps,
  body: ClaimBody,
  clientSignal?: AbortSignal,
): Promise<Claimed | null> {
  const [claimed] = await claimJobsWaiting(deps, body, 1, clientSignal)
  return claimed ?? null
}

/**
 * Claims up to `count` jobs like claimJobs; with `wait_seconds`, when none is
 * claimable, waits as claimJobWaiting does and answers whatever the first
 * successful attempt took. Empty at the deadline or when the client goes away.
 */
export async function claimJobsWaiting(
  deps: Deps,
  body: ClaimBody,
  count: number,
  clientSignal?: AbortSignal,
): Promise<Claimed[]> {
  const waitMs = (body.wait_seconds ?? 0) * 1000
  if (waitMs <= 0) return claimJobs(deps, body, count, clientSignal)
  const signal = until(deps, clientSignal)
  const deadline = performance.now() + waitMs
  // Join the line before the first attempt: a hint during the attempt is not lost.
  const waiter = deps.events.waiters.register(body.kinds, body.queues)
  let leftAfterWake = false
  try {
    for (let attempt = 0; ; attempt++) {
      const reopening: Reopening = { at: null }
      const claimed = await claimJobs(deps, body, count, clientSignal, reopening)
      const [first] = claimed
      if (first) {
        if (attempt > 0) deps.events.waiters.claimedOne(first.job)
        return claimed
      }
      const left = deadline - performance.now()
      if (left <= 0 || signal.aborted) return []
      const dueInMs = await jobNextDueIn(deps.sql, deps.tables, body.kinds, body.queues)
      const reopensInMs = reopening.at === null ? null : Math.max(0, reopening.at.getTime() - Date.now())
      await waiter.next(Math.min(left, dueInMs ?? left, reopensInMs ?? left), signal)
      // The wake may be the client leaving or the process closing: no claim after that.
      if (signal.aborted) {
        leftAfterWake = true
        return []
      }
    }
  } finally {
    waiter.release()
    // A hint may have woken this waiter as its client left: someone else takes it.
    if (leftAfterWake) deps.events.waiters.passOn(body.kinds)
  }
}
