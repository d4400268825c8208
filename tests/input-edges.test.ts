/**
 * Inputs at the edges of what JavaScript and Postgres can hold, found by the fuzzer
 * (tests/reliability/fuzz*): each is a 400 naming the field, never a 500, and the
 * single and batch enqueue routes treat them alike.
 */
import { describe, expect, test } from 'bun:test'
import { startFixture } from './support/harness'

const f = await startFixture()

/** Posts raw JSON text (so `1e999` and the like reach the server as written). */
function postRaw(path: string, text: string) {
  return f.call('POST', path, text, { 'content-type': 'application/json' })
}

describe('cron_expr naming an Object.prototype member', () => {
  for (const expr of ['constructor', '__proto__', 'Constructor', 'hasOwnProperty', 'valueOf']) {
    test(`${JSON.stringify(expr)} is 400 naming cron_expr on POST and PUT /schedules`, async () => {
      const created = await f.call('POST', '/schedules', { kind: 'edge', cron_expr: expr })
      expect(created.status).toBe(400)
      expect(created.body.error).toStartWith('cron_expr: ')
      const good = await f.call('POST', '/schedules', { kind: 'edge', cron_expr: '@hourly' })
      expect(good.status).toBe(201)
      const replaced = await f.call('PUT', `/schedules/${good.body.id}`, { kind: 'edge', cron_expr: expr })
      expect(replaced.status).toBe(400)
      expect(replaced.body.error).toStartWith('cron_expr: ')
    })
  }
})

describe('numbers JSON cannot hold (1e999 parses as Infinity)', () => {
  test('POST /jobs with params 1e999 or -1e999, at any depth, is 400 naming the field', async () => {
    for (const [text, field] of [
      ['{"kind":"edge","params":1e999}', 'params'],
      ['{"kind":"edge","params":-1e999}', 'params'],
      ['{"kind":"edge","params":{"a":[1,2e400]}}', 'params.a.1'],
    ] as const) {
      const res = await postRaw('/jobs', text)
      expect(res.status).toBe(400)
      expect(res.body.error).toStartWith(`${field}: must be a finite number`)
    }
  })

  test('POST /jobs/batch with params 1e999 is 400 naming jobs.N.params, and stores nothing', async () => {
    const kind = `edge-batch-${Date.now()}`
    const res = await postRaw('/jobs/batch', `{"jobs":[{"kind":"${kind}"},{"kind":"${kind}","params":1e999}]}`)
    expect(res.status).toBe(400)
    expect(res.body.error).toStartWith('jobs.1.params: must be a finite number')
    expect((await f.call('GET', `/jobs?kind=${kind}`)).body).toEqual([])
  })

  test('every other body refuses it too: complete result, fail result, schedule params', async () => {
    const job = await f.call('POST', '/jobs', { kind: 'edge-complete' })
    const claimed = await f.call('POST', '/claim', { kinds: ['edge-complete'], worker_id: 'w' })
    expect(claimed.status).toBe(200)
    const runId = claimed.body.run.id
    const complete = await postRaw(`/runs/${runId}/complete`, '{"worker_id":"w","result":{"n":1e999}}')
    expect(complete.status).toBe(400)
    expect(complete.body.error).toStartWith('result.n: must be a finite number')
    const fail = await postRaw(`/jobs/${job.body.id}/fail`, '{"worker_id":"w","error":"x","result":[-1e999]}')
    expect(fail.status).toBe(400)
    expect(fail.body.error).toStartWith('result.0: must be a finite number')
    const schedule = await postRaw('/schedules', '{"kind":"edge","cron_expr":"@hourly","params":1e999}')
    expect(schedule.status).toBe(400)
    expect(schedule.body.error).toStartWith('params: must be a finite number')
  })

  test('params: null is stored as {} by the single and the batch route alike', async () => {
    const single = await postRaw('/jobs', '{"kind":"edge-null","params":null}')
    expect(single.status).toBe(201)
    expect(single.body.params).toEqual({})
    const batch = await postRaw('/jobs/batch', '{"jobs":[{"kind":"edge-null","params":null}]}')
    expect(batch.status).toBe(200)
    expect(batch.body.jobs[0].job.params).toEqual({})
  })
})
