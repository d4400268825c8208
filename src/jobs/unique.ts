/**
 * The rules of `unique_while_active` and `debounce_seconds`: an idempotency key
 * that is unique only among its kind's live (waiting, pending, active) jobs, and
 * a live pending job that a repeat enqueue moves later instead of duplicating.
 * The statements are in unique-sql.ts; service.ts routes here the enqueues that
 * ask for either, so every other enqueue keeps today's statements.
 */
import { afterCommit } from '../after-commit'
import type { Deps } from '../deps'
import { InvalidInput } from '../errors'
import { recordEnqueued } from '../metrics/record'
import type { EnqueueBatchItem } from './model'
import { type Enqueued, enqueueJobs, insertOf } from './service'
import { type JobDebounce, type JobInsertWhileActive, jobDebounce, jobInsertWhileActive } from './unique-sql'

/** Tries of one statement before giving up (each empty answer needs a concurrent insert of the key to lose to). */
const MAX_ATTEMPTS = 5

/** True when an enqueue asks for a key unique while active (debounce_seconds implies it). */
export const isKeyedWhileActive = (body: EnqueueBatchItem) =>
  body.unique_while_active === true || body.debounce_seconds !== undefined

/**
 * Enqueues one job keyed while active: a new job (created), or the live job of
 * its kind that holds the key, unchanged (a duplicate) or, with
 * debounce_seconds, moved (debounced; see jobDebounce for when).
 */
export async function enqueueUniqueJob(deps: Deps, body: EnqueueBatchItem): Promise<Enqueued> {
  const insert = whileActiveInsertOf(body, '', (await deps.events.limitedKinds.among([body.kind])).length > 0)
  return enqueueWhileActive(deps, insert)
}

/**
 * A batch in which some items are keyed while active. Every item is checked
 * before anything is written, so a refusal names the item's own index and stores
 * nothing. The other items then go in one statement (enqueueJobs), and these one
 * statement each, in input order, each committing alone as POST /jobs would.
 * Not one transaction around them: it would hold each key it took until the end,
 * and two batches naming the same keys (or the same limited kind's concurrency
 * keys, whose slot rows each insert locks) in different orders could deadlock;
 * one statement holds one key. A key repeated in the batch meets the job its
 * earlier item left, as a second POST /jobs would.
 */
export async function enqueueBatchWhileActive(deps: Deps, bodies: EnqueueBatchItem[]): Promise<Enqueued[]> {
  const limited = new Set(await deps.events.limitedKinds.among([...new Set(bodies.map((b) => b.kind))]))
  const keyed: { ord: number; insert: JobInsertWhileActive | JobDebounce }[] = []
  const plain: { ord: number; body: EnqueueBatchItem }[] = []
  bodies.forEach((body, ord) => {
    if (isKeyedWhileActive(body)) {
      keyed.push({ ord, insert: whileActiveInsertOf(body, `jobs.${ord}.`, limited.has(body.kind)) })
    } else {
      insertOf(body, `jobs.${ord}.`, false) // only to refuse a bad item under its own index
      plain.push({ ord, body })
    }
  })
  const answers: Enqueued[] = new Array(bodies.length)
  if (plain.length > 0) {
    const { jobs: stored } = await enqueueJobs(
      deps,
      plain.map((p) => p.body),
    )
    plain.forEach((p, i) => {
      answers[p.ord] = stored[i]!
    })
  }
  for (const { ord, insert } of keyed) answers[ord] = await enqueueWhileActive(deps, insert)
  return answers
}

/**
 * The row a while-active enqueue stores, or a 400 naming the field that cannot
 * be honoured. `at` prefixes the field (`jobs.3.` in a batch).
 */
function whileActiveInsertOf(
  body: EnqueueBatchItem,
  at: string,
  flowControlled: boolean,
): JobInsertWhileActive | JobDebounce {
  const field = body.debounce_seconds !== undefined ? 'debounce_seconds' : 'unique_while_active'
  if (body.idempotency_key == null) {
    throw new InvalidInput(`${at}${field}`, 'needs an idempotency_key (the key it keeps unique among live jobs)')
  }
  if (body.debounce_seconds !== undefined) {
    if (body.depends_on !== undefined) {
      // A waiting job comes due when its dependencies allow, not at a time a debounce could move.
      throw new InvalidInput(`${at}debounce_seconds`, 'cannot be combined with depends_on')
    }
    if (body.scheduled_at != null) {
      throw new InvalidInput(`${at}debounce_seconds`, 'cannot be combined with scheduled_at (it sets the due time)')
    }
    if (body.unique_while_active === false) {
      throw new InvalidInput(`${at}debounce_seconds`, 'matches the key among live jobs: it needs unique_while_active')
    }
  }
  const insert = { ...insertOf(body, at, flowControlled), idempotencyKey: body.idempotency_key }
  return body.debounce_seconds === undefined ? insert : { ...insert, debounceSeconds: body.debounce_seconds }
}

/**
 * Runs the statement until it answers. The only empty answer is a lost race to a
 * concurrent first insert of the key that committed after the statement's
 * snapshot; the next try sees (and, debouncing, moves) the winner.
 */
async function enqueueWhileActive(deps: Deps, insert: JobInsertWhileActive | JobDebounce): Promise<Enqueued> {
  const { sql, tables } = deps
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const answer = await afterCommit(deps, async (effects) => {
      const answer =
        'debounceSeconds' in insert
          ? await jobDebounce(sql, tables, insert)
          : await jobInsertWhileActive(sql, tables, insert)
      if (!answer) return null
      const created = answer.outcome === 'created'
      // A debounced job changed (its due time): streams and waiting claimers hear of it.
      if (answer.outcome !== 'duplicate') effects.announce([answer.job])
      effects.count((m) => recordEnqueued(m, answer.job, created))
      return answer
    })
    if (answer?.outcome === 'debounced') return { created: false, debounced: true, job: answer.job }
    if (answer) return { created: answer.outcome === 'created', job: answer.job }
  }
  throw new Error(`enqueue of ${insert.kind}/${insert.idempotencyKey} found neither a new nor a live job`)
}
