/**
 * Schedule routes: create with defaults, validation that names the field, list
 * (newest first, filters, paging), full-replace PUT and when it recomputes
 * next_fire_at, delete, and fire-now, which enqueues an ordinary job.
 */
import { describe, expect, test } from 'bun:test'
import { parseRecurrence } from '../src/schedules/recurrence'
import { claimOne, uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()

const SCHEDULE_ID = /^sched_[0-9A-HJKMNP-TV-Z]{26}$/
/** Well-formed, but nobody has it. */
const UNKNOWN_ID = 'sched_01JD8X3Q4N6V7W8Y9Z0A1B2C3D'
const SENTINEL = '2031-01-01T00:00:00.000Z'
/** A recipe with every optional field set away from its default. */
const RECIPE = {
  queue: 'reports',
  service: 'billing',
  params: { region: 'in', n: [1, 2] },
  priority: 7,
  max_attempts: 3,
}
const DEFAULTS = {
  queue: 'default',
  service: '',
  params: {},
  priority: 0,
  max_attempts: 1,
  timezone: 'UTC',
  enabled: true,
}

async function create(body: Record<string, unknown>) {
  const res = await f.call('POST', '/schedules', { cron_expr: '@daily', ...body })
  expect(res.status).toBe(201)
  return res.body
}
/** Pins next_fire_at to a value no recomputation would produce. */
const pinNextFire = (id: string, at = SENTINEL) =>
  f.sql`update ${f.sql(f.tables.schedules)} set next_fire_at = ${at}::timestamptz where id = ${id}`
const put = (id: string, body: Record<string, unknown>) => f.call('PUT', `/schedules/${id}`, body)
/** A timestamp within [low, high] (epoch ms). */
function expectWithin(stamp: string, low: number, high: number) {
  expect(Date.parse(stamp)).toBeGreaterThanOrEqual(low)
  expect(Date.parse(stamp)).toBeLessThanOrEqual(high)
}
/** A 400 whose message names `field`. */
function expect400(res: { status: number; body: any }, field: string) {
  expect(res.status).toBe(400)
  expect(res.body.error).toContain(field)
}

describe('POST /schedules', () => {
  test('answers 201 with defaults: queue default, service "", params {}, priority 0, max_attempts 1, UTC, enabled', async () => {
    const kind = uniqueKind('sched-defaults')
    const res = await f.call('POST', '/schedules', { kind, cron_expr: '@hourly' })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({ kind, ...DEFAULTS, cron_expr: '@hourly', last_fire_at: null, last_job_id: null })
    expect(res.body.id).toMatch(SCHEDULE_ID)
    expectWithin(res.body.next_fire_at, Date.now(), Date.now() + 3_600_000)
    expect(Date.parse(res.body.next_fire_at) % 3_600_000).toBe(0)
  })

  test('next_fire_at is the next time of the expression in its zone; the recipe is stored as given', async () => {
    const kind = uniqueKind('sched-recipe')
    const before = new Date()
    const body = { kind, ...RECIPE, cron_expr: '15 3 * * *', timezone: 'Asia/Kolkata' }
    const s = await create(body)
    expect(s).toMatchObject(body)
    expect(s.next_fire_at).toBe(parseRecurrence('15 3 * * *', 'Asia/Kolkata').next(before).toISOString())
    expect(s.next_fire_at).toMatch(/T21:45:00\.000Z$/) // 03:15 at +05:30
  })

  test('@every schedules first fire one period from now', async () => {
    const before = Date.now()
    const s = await create({ kind: uniqueKind('sched-every'), cron_expr: '@every 1h30m' })
    expectWithin(s.next_fire_at, before + 5_400_000, Date.now() + 5_400_000)
  })

  const invalid: [string, Record<string, unknown>, string][] = [
    ['cron_expr missing', {}, 'cron_expr'],
    ['cron_expr with 6 fields', { cron_expr: '0 0 0 * * *' }, 'cron_expr'],
    ['cron_expr "@every 5x"', { cron_expr: '@every 5x' }, 'cron_expr'],
    ['cron_expr that never fires', { cron_expr: '0 0 30 2 *' }, 'cron_expr'],
    ['timezone unknown', { cron_expr: '@daily', timezone: 'Mars/Olympus' }, 'timezone'],
    ['max_attempts 0', { cron_expr: '@daily', max_attempts: 0 }, 'max_attempts'],
    ['priority as the string "5"', { cron_expr: '@daily', priority: '5' }, 'priority'],
    ['enabled as the string "true"', { cron_expr: '@daily', enabled: 'true' }, 'enabled'],
    ['kind missing', { kind: undefined, cron_expr: '@daily' }, 'kind'],
  ]
  for (const [label, extra, field] of invalid) {
    test(`${label} is 400 naming ${field}, and nothing is stored`, async () => {
      const kind = uniqueKind('sched-invalid')
      const res = await f.call('POST', '/schedules', { kind, ...extra })
      expect400(res, field)
      expect(res.body.error).toStartWith(`${field}: `)
      expect((await f.call('GET', `/schedules?kind=${kind}`)).body).toEqual([])
    })
  }
})

describe('GET /schedules/:id', () => {
  test('answers the stored schedule', async () => {
    const s = await create({ kind: uniqueKind('sched-get') })
    const res = await f.call('GET', `/schedules/${s.id}`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual(s)
  })

  test('an id that cannot be a schedule id is 400; a well-formed unknown one is 404 on every route', async () => {
    for (const bad of ['nope', 'sched_123', 'job_01JD8X3Q4N6V7W8Y9Z0A1B2C3D']) {
      expect400(await f.call('GET', `/schedules/${bad}`), 'id')
    }
    expect((await f.call('GET', `/schedules/${UNKNOWN_ID}`)).status).toBe(404)
    expect((await put(UNKNOWN_ID, { kind: 'x', cron_expr: '@daily' })).status).toBe(404)
    expect((await f.call('DELETE', `/schedules/${UNKNOWN_ID}`)).status).toBe(404)
    const fire = await f.call('POST', `/schedules/${UNKNOWN_ID}/fire`)
    expect(fire.status).toBe(404)
    expect(typeof fire.body.error).toBe('string')
  })
})

describe('GET /schedules', () => {
  test('lists newest first, filtered by kind and by enabled=true / enabled=false', async () => {
    const kind = uniqueKind('sched-list')
    const a = await create({ kind })
    const b = await create({ kind, enabled: false })
    const c = await create({ kind })
    await create({ kind: uniqueKind('sched-list-other') })
    const all = await f.call('GET', `/schedules?kind=${kind}`)
    expect(all.status).toBe(200)
    expect(all.body.map((s: any) => s.id)).toEqual([c.id, b.id, a.id])
    const on = await f.call('GET', `/schedules?kind=${kind}&enabled=true`)
    expect(on.body.map((s: any) => s.id)).toEqual([c.id, a.id])
    const off = await f.call('GET', `/schedules?kind=${kind}&enabled=false`)
    expect(off.body.map((s: any) => s.id)).toEqual([b.id])
  })

  test('limit and cursor page through every schedule exactly once', async () => {
    const kind = uniqueKind('sched-page')
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await create({ kind })).id)
    const seen: string[] = []
    let cursor = ''
    for (let page = 0; page < 5; page++) {
      const res = await f.call('GET', `/schedules?kind=${kind}&limit=2${cursor ? `&cursor=${cursor}` : ''}`)
      expect(res.status).toBe(200)
      expect(res.body.length).toBeLessThanOrEqual(2)
      if (res.body.length === 0) break
      seen.push(...res.body.map((s: any) => s.id))
      cursor = res.body.at(-1).id
    }
    expect(seen).toEqual([...ids].reverse())
  })

  test('bad list queries are 400 naming the parameter', async () => {
    expect400(await f.call('GET', '/schedules?limit=0'), 'limit')
    expect400(await f.call('GET', '/schedules?limit=201'), 'limit')
    expect400(await f.call('GET', '/schedules?enabled=maybe'), 'enabled')
    expect400(await f.call('GET', '/schedules?cursor=not-an-id'), 'cursor')
  })
})

describe('PUT /schedules/:id (full replace)', () => {
  test('a changed cron_expr recomputes next_fire_at from now', async () => {
    const kind = uniqueKind('sched-put-cron')
    const s = await create({ kind, cron_expr: '@daily' })
    await pinNextFire(s.id)
    const before = new Date()
    const res = await put(s.id, { kind, cron_expr: '45 * * * *' })
    expect(res.status).toBe(200)
    expect(res.body.cron_expr).toBe('45 * * * *')
    expect(res.body.next_fire_at).toBe(parseRecurrence('45 * * * *', 'UTC').next(before).toISOString())
  })

  test('a changed timezone recomputes next_fire_at in the new zone', async () => {
    const kind = uniqueKind('sched-put-tz')
    const s = await create({ kind, cron_expr: '0 9 * * *' })
    await pinNextFire(s.id)
    const before = new Date()
    const res = await put(s.id, { kind, cron_expr: '0 9 * * *', timezone: 'Pacific/Auckland' })
    expect(res.status).toBe(200)
    expect(res.body.timezone).toBe('Pacific/Auckland')
    expect(res.body.next_fire_at).toBe(parseRecurrence('0 9 * * *', 'Pacific/Auckland').next(before).toISOString())
  })

  test('changing only params and kind keeps next_fire_at', async () => {
    const s = await create({ kind: uniqueKind('sched-put-keep'), cron_expr: '@hourly', params: { v: 1 } })
    await pinNextFire(s.id)
    const kind = uniqueKind('sched-put-keep-renamed')
    const res = await put(s.id, { kind, cron_expr: '@hourly', params: { v: 2 } })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ kind, params: { v: 2 }, next_fire_at: SENTINEL })
    expect(Date.parse(res.body.updated_at)).toBeGreaterThanOrEqual(Date.parse(s.updated_at))
  })

  test('omitted optional fields revert to their defaults', async () => {
    const kind = uniqueKind('sched-put-defaults')
    const s = await create({ kind, ...RECIPE, timezone: 'Europe/Berlin', enabled: false })
    const res = await put(s.id, { kind, cron_expr: '@daily' })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ id: s.id, ...DEFAULTS, created_at: s.created_at })
  })

  test('disabling keeps next_fire_at; re-enabling recomputes it from now (no stale fire)', async () => {
    const kind = uniqueKind('sched-put-reenable')
    const s = await create({ kind, cron_expr: '@every 10m' })
    const off = await put(s.id, { kind, cron_expr: '@every 10m', enabled: false })
    expect(off.status).toBe(200)
    expect(off.body.enabled).toBe(false)
    expect(off.body.next_fire_at).toBe(s.next_fire_at)
    // Long disabled: its old fire time is far in the past.
    await pinNextFire(s.id, '2020-01-01T00:00:00.000Z')
    const before = Date.now()
    const on = await put(s.id, { kind, cron_expr: '@every 10m', enabled: true })
    expect(on.status).toBe(200)
    expect(on.body.enabled).toBe(true)
    expectWithin(on.body.next_fire_at, before + 600_000, Date.now() + 600_000)
  })

  test('a bad cron_expr or timezone on PUT is 400 naming the field and changes nothing', async () => {
    const kind = uniqueKind('sched-put-bad')
    const s = await create({ kind })
    expect400(await put(s.id, { kind, cron_expr: '61 * * * *' }), 'cron_expr')
    expect400(await put(s.id, { kind, cron_expr: '@daily', timezone: 'Nowhere/Land' }), 'timezone')
    expect((await f.call('GET', `/schedules/${s.id}`)).body).toEqual(s)
  })
})

describe('DELETE /schedules/:id', () => {
  test('answers {id}; afterwards the schedule is 404, and deleting again is 404', async () => {
    const s = await create({ kind: uniqueKind('sched-delete') })
    const res = await f.call('DELETE', `/schedules/${s.id}`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual({ id: s.id })
    expect((await f.call('GET', `/schedules/${s.id}`)).status).toBe(404)
    expect((await f.call('DELETE', `/schedules/${s.id}`)).status).toBe(404)
  })
})

describe('POST /schedules/:id/fire', () => {
  test('answers a pending job built from the recipe; records last_fire_at and last_job_id; next_fire_at stays', async () => {
    const kind = uniqueKind('sched-fire')
    const s = await create({ kind, ...RECIPE, cron_expr: '@weekly' })
    const before = Date.now()
    const res = await f.call('POST', `/schedules/${s.id}/fire`)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ kind, ...RECIPE, status: 'pending', attempt_count: 0, idempotency_key: null })
    expect(res.body.id).toMatch(/^job_[0-9A-HJKMNP-TV-Z]{26}$/)
    const after = (await f.call('GET', `/schedules/${s.id}`)).body
    expect(after.last_job_id).toBe(res.body.id)
    expect(Date.parse(after.last_fire_at)).toBeGreaterThanOrEqual(before - 1000)
    expect(after.next_fire_at).toBe(s.next_fire_at)
    const job = await f.call('GET', `/jobs/${res.body.id}`)
    expect(job.status).toBe(200)
    expect(job.body.status).toBe('pending')
  })

  test('each fire enqueues a new job; a fired job is ordinary work that a worker can claim', async () => {
    const kind = uniqueKind('sched-fire-claim')
    const s = await create({ kind, cron_expr: '@yearly' })
    const first = await f.call('POST', `/schedules/${s.id}/fire`)
    const second = await f.call('POST', `/schedules/${s.id}/fire`)
    expect(first.status).toBe(200)
    expect(second.status).toBe(200)
    expect(second.body.id).not.toBe(first.body.id)
    expect((await f.call('GET', `/schedules/${s.id}`)).body.last_job_id).toBe(second.body.id)
    const claimed = await claimOne(f, kind, 'sched-worker')
    expect(claimed.job.id).toBe(first.body.id)
    expect(claimed.job.status).toBe('active')
    const done = await f.call('POST', `/runs/${claimed.run.id}/complete`, {
      worker_id: 'sched-worker',
      result: { ok: 1 },
    })
    expect(done.status).toBe(200)
    expect(done.body.status).toBe('succeeded')
  })
})

describe('OpenAPI', () => {
  test('/docs/json lists every schedule route with a summary under the schedules tag', async () => {
    const doc = (await f.call('GET', '/docs/json')).body as { paths: Record<string, Record<string, any>> }
    const routes: [string, string, string[]][] = [
      ['post', '/foreman/schedules', ['201', '400']],
      ['get', '/foreman/schedules', ['200', '400']],
      ['get', '/foreman/schedules/{id}', ['200', '400', '404']],
      ['put', '/foreman/schedules/{id}', ['200', '400', '404']],
      ['delete', '/foreman/schedules/{id}', ['200', '400', '404']],
      ['post', '/foreman/schedules/{id}/fire', ['200', '400', '404']],
    ]
    for (const [method, path, statuses] of routes) {
      const operation = doc.paths[path]?.[method]
      expect(operation, `${method} ${path}`).toBeDefined()
      expect(operation.summary.length).toBeGreaterThan(3)
      expect(operation.tags).toContain('schedules')
      expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(statuses))
    }
    const body = doc.paths['/foreman/schedules']!.post.requestBody.content['application/json'].schema
    expect(body.required).toEqual(expect.arrayContaining(['kind', 'cron_expr']))
  })
})
