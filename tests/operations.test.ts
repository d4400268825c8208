/**
 * Operations: liveness, readiness (database reachable, migrations applied, not
 * draining), the optional bearer-token guard over every route, and request logs.
 */
import { describe, expect, test } from 'bun:test'
import pino from 'pino'
import { buildApp } from '../src/app'
import { createSql } from '../src/db/client'
import { tablesFor } from '../src/db/tables'
import { startFixture, uniquePrefix } from './support/harness'
import { TcpProxy } from './support/tcp-proxy'

const f = await startFixture()
const get = (app: ReturnType<typeof buildApp>, path: string, headers: Record<string, string> = {}) =>
  app.handle(new Request(`http://localhost/foreman${path}`, { headers }))

describe('health', () => {
  test('healthz answers ok and readyz answers ready on a migrated, reachable database', async () => {
    expect((await f.call('GET', '/healthz')).body).toEqual({ status: 'ok' })
    const ready = await f.call('GET', '/readyz')
    expect(ready.status).toBe(200)
    expect(ready.body).toEqual({ status: 'ready' })
  })

  test('readyz is 503 while a migration is pending', async () => {
    const app = buildApp({ ...f.deps, tables: tablesFor(uniquePrefix()) })
    const res = await get(app, '/readyz')
    expect(res.status).toBe(503)
    expect(((await res.json()) as { error: string }).error).toBe('migrations pending')
  })

  test('readyz turns 503 when the database becomes unreachable and 200 again when it returns', async () => {
    const target = new URL(process.env.DATABASE_URL ?? '')
    const proxy = new TcpProxy(target.hostname, Number(target.port))
    proxy.start()
    const proxied = new URL(target)
    proxied.port = String(proxy.port)
    const sql = createSql({ url: proxied.toString(), max: 2 })
    const app = buildApp({ ...f.deps, sql })
    try {
      expect((await get(app, '/readyz')).status).toBe(200)
      proxy.stop()
      const down = await get(app, '/readyz')
      expect(down.status).toBe(503)
      expect(((await down.json()) as { error: string }).error).toMatch(/database/)
      proxy.start()
      // postgres.js reconnects on the next query once the proxy is back.
      let status = 0
      for (let i = 0; i < 50 && status !== 200; i++) {
        status = (await get(app, '/readyz')).status
        if (status !== 200) await Bun.sleep(200)
      }
      expect(status).toBe(200)
    } finally {
      proxy.stop()
      await sql.end({ timeout: 1 })
    }
  }, 30_000)

  test('readyz turns 503 the moment a shutdown begins, while healthz stays ok', async () => {
    const g = await startFixture()
    expect((await g.call('GET', '/readyz')).status).toBe(200)
    g.deps.events.close()
    const res = await g.call('GET', '/readyz')
    expect(res.status).toBe(503)
    expect(res.body).toEqual({ status: 'not ready', error: 'shutting down' })
    expect((await g.call('GET', '/healthz')).status).toBe(200)
  })
})

describe('bearer-token auth (FOREMAN_API_TOKENS)', async () => {
  const secured = await startFixture({ apiTokens: ['old-token-1234', 'new-token-5678'] })
  const doc = (await secured.call('GET', '/docs/json')).body as { paths: Record<string, Record<string, unknown>> }
  const OPEN = new Set(['/foreman/ping', '/foreman/healthz', '/foreman/readyz'])
  const routes = Object.entries(doc.paths).flatMap(([path, methods]) =>
    Object.keys(methods).map((method) => ({
      method: method.toUpperCase(),
      path: path.replace('{id}', 'job_01M8KH4SY85J9WCA89M8YMJANH'),
      open: OPEN.has(path),
    })),
  )

  test('the matrix covers every documented route', () => {
    expect(routes.length).toBeGreaterThanOrEqual(20)
  })

  const cases: [string, Record<string, string>, boolean][] = [
    ['no header', {}, false],
    ['a malformed header', { authorization: 'Basic b2xkLXRva2Vu' }, false],
    ['a wrong token', { authorization: 'Bearer old-token-1235' }, false],
    ['the old token', { authorization: 'Bearer old-token-1234' }, true],
    ['the new token (two valid while rotating)', { authorization: 'Bearer new-token-5678' }, true],
  ]
  for (const [label, headers, accepted] of cases) {
    test(`${label}: ${accepted ? 'every route lets it through' : 'every closed route answers 401 with WWW-Authenticate'}`, async () => {
      for (const route of routes) {
        const res = await secured.app.handle(
          new Request(`http://localhost${route.path}`, { method: route.method, headers }),
        )
        await res.body?.cancel()
        if (accepted || route.open) {
          expect({ ...route, status: res.status === 401 ? 401 : 'not 401' }).toEqual({ ...route, status: 'not 401' })
        } else {
          expect({ ...route, status: res.status }).toEqual({ ...route, status: 401 })
          expect(res.headers.get('www-authenticate')).toStartWith('Bearer')
        }
      }
    })
  }

  test('the docs stay open', async () => {
    expect((await get(secured.app, '/docs')).status).toBe(200)
    expect((await secured.call('GET', '/docs/json')).status).toBe(200)
  })

  test('without tokens configured, nothing asks for one', async () => {
    expect((await f.call('GET', '/jobs')).status).toBe(200)
  })
})

test('every answered request is logged once with method, route template, status and duration', async () => {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, { write: (line: string) => lines.push(JSON.parse(line)) })
  const app = buildApp({ ...f.deps, log })
  await get(app, '/jobs/job_01M8KH4SY85J9WCA89M8YMJANH')
  await get(app, '/ping')
  await Bun.sleep(20)
  const requests = lines.filter((l) => l.msg === 'request')
  expect(requests.map(({ method, route, status }) => ({ method, route, status }))).toEqual([
    { method: 'GET', route: '/foreman/jobs/:id', status: 404 },
    { method: 'GET', route: '/foreman/ping', status: 200 },
  ])
  for (const line of requests) expect(line.duration_ms).toBeNumber()
})
