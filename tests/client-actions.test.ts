/**
 * ForemanClient's job actions against a real server: retry, deleteJob, bulk, and
 * listJobs with `params` given as an object.
 */
import { describe, expect, test } from 'bun:test'
import { ForemanClient, ForemanError } from '../src/client'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const foreman = new ForemanClient({ baseUrl: f.serve() })

/** Enqueues a job and fails its only attempt. */
async function failed(kind: string) {
  const { job } = await foreman.enqueue({ kind })
  const claimed = await foreman.claim({ kinds: [kind], worker_id: 'w-client' })
  if (!claimed) throw new Error('nothing claimed')
  await foreman.fail(claimed.run.id, { worker_id: 'w-client', error: 'boom' })
  return job
}

describe('ForemanClient: job actions', () => {
  test('retry answers the job pending again; a second retry throws ForemanError 409', async () => {
    const kind = uniqueKind('client-retry')
    const job = await failed(kind)
    const retried = await foreman.retry(job.id)
    expect(retried).toMatchObject({ id: job.id, status: 'pending', attempt_count: 1, max_attempts: 2 })
    const again = await foreman.retry(job.id).catch((e) => e)
    expect(again).toBeInstanceOf(ForemanError)
    expect(again.status).toBe(409)
  })

  test('deleteJob answers { id }; the job is gone (404)', async () => {
    const kind = uniqueKind('client-delete')
    const job = await failed(kind)
    expect(await foreman.deleteJob(job.id)).toEqual({ id: job.id })
    const gone = await foreman.getJob(job.id).catch((e) => e)
    expect(gone).toBeInstanceOf(ForemanError)
    expect(gone.status).toBe(404)
  })

  test('bulk: dry run, then calls until more is false', async () => {
    const kind = uniqueKind('client-bulk')
    for (let i = 0; i < 5; i++) await foreman.enqueue({ kind })
    expect(await foreman.bulk({ action: 'cancel', filter: { kind }, dry_run: true })).toEqual({
      matched: 5,
      changed: 0,
      more: false,
    })
    const answers = []
    let answer: Awaited<ReturnType<ForemanClient['bulk']>>
    do {
      answer = await foreman.bulk({ action: 'cancel', filter: { kind }, limit: 2 })
      answers.push(answer)
    } while (answer.more)
    expect(answers.map((a) => a.changed)).toEqual([2, 2, 1])
    expect((await foreman.listJobs({ kind, status: 'cancelled' })).length).toBe(5)
    const refused = await foreman.bulk({ action: 'delete' } as never).catch((e) => e)
    expect(refused).toBeInstanceOf(ForemanError)
    expect(refused.status).toBe(400)
  })

  test('listJobs sends params as JSON', async () => {
    const kind = uniqueKind('client-params')
    const { job } = await foreman.enqueue({ kind, params: { customer: 42, tags: ['a & b'] } })
    await foreman.enqueue({ kind, params: { customer: 7 } })
    expect((await foreman.listJobs({ kind, params: { customer: 42 } })).map((j) => j.id)).toEqual([job.id])
    expect((await foreman.listJobs({ kind, params: { tags: ['a & b'] } })).map((j) => j.id)).toEqual([job.id])
  })
})
