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

describe('scheduled_at outside what Postgres and RFC 3339 hold', () => {
  const OUT_OF_RANGE = [
    '+010000-01-01T00:00:00Z',
    '+275760-09-12T23:59:59.993Z',
    '-262196-12-29T02:05:17.305Z',
    '9999-12-31T23:59:59-15:00',
    '0001-01-01T00:00:00+01:00',
  ]

  test('POST /jobs refuses a date past year 9999 or before year 1 (in UTC) with a 400 naming scheduled_at', async () => {
    for (const scheduled_at of OUT_OF_RANGE) {
      const res = await f.call('POST', '/jobs', { kind: 'edge-date', scheduled_at })
      expect({ scheduled_at, status: res.status }).toEqual({ scheduled_at, status: 400 })
      expect(res.body.error).toStartWith('scheduled_at: ')
    }
  })

  test('POST /jobs/batch refuses the same with a 400 naming jobs.N.scheduled_at, and stores nothing', async () => {
    const kind = `edge-date-batch-${Date.now()}`
    for (const scheduled_at of OUT_OF_RANGE) {
      const res = await f.call('POST', '/jobs/batch', { jobs: [{ kind }, { kind }, { kind }, { kind, scheduled_at }] })
      expect({ scheduled_at, status: res.status }).toEqual({ scheduled_at, status: 400 })
      expect(res.body.error).toStartWith('jobs.3.scheduled_at: ')
    }
    expect((await f.call('GET', `/jobs?kind=${kind}`)).body).toEqual([])
  })

  test('a day the month does not have is refused by both routes', async () => {
    const single = await f.call('POST', '/jobs', { kind: 'edge-date', scheduled_at: '2026-02-30T00:00:00Z' })
    expect(single.status).toBe(400)
    expect(single.body.error).toStartWith('scheduled_at: ')
    const batch = await f.call('POST', '/jobs/batch', {
      jobs: [{ kind: 'edge-date', scheduled_at: '2026-02-30T00:00:00Z' }],
    })
    expect(batch.status).toBe(400)
    expect(batch.body.error).toStartWith('jobs.0.scheduled_at: ')
  })

  test('both routes store the same instant for the same text, whatever its offset', async () => {
    for (const [scheduled_at, stored] of [
      ['2026-01-01T00:00:00+23:59', '2025-12-31T00:01:00.000Z'],
      ['2026-01-01T00:00:00-15:30', '2026-01-01T15:30:00.000Z'],
      ['9999-12-31T23:59:59.999Z', '9999-12-31T23:59:59.999Z'],
      ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
    ] as const) {
      const single = await f.call('POST', '/jobs', { kind: 'edge-date', scheduled_at })
      const batch = await f.call('POST', '/jobs/batch', { jobs: [{ kind: 'edge-date', scheduled_at }] })
      expect([single.status, single.body.scheduled_at]).toEqual([201, stored])
      expect([batch.status, batch.body.jobs?.[0]?.job.scheduled_at]).toEqual([200, stored])
    }
  })

  test('GET /events?since= and Last-Event-ID out of range are 400 naming the field', async () => {
    const since = await f.call('GET', `/events?since=${encodeURIComponent('9999-12-31T23:59:59-15:00')}`)
    expect(since.status).toBe(400)
    expect(since.body.error).toStartWith('since: ')
    const header = await f.call('GET', '/events', undefined, { 'last-event-id': '9999-12-31T23:59:59-15:00/x' })
    expect(header.status).toBe(400)
    expect(header.body.error).toStartWith('Last-Event-ID: ')
  })
})

test('a database refusal of a timestamp (22009, time zone displacement) is a 400 without its text, as a backstop', async () => {
  const { toErrorResponse } = await import('../src/errors')
  const refused = Object.assign(new Error('time zone displacement out of range: "+010000-01-01"'), { code: '22009' })
  const answer = toErrorResponse(refused)
  expect(answer.status).toBe(400)
  expect(answer.body.error).not.toContain('010000')
})
