/** The OpenAPI document and Swagger UI describe every route from the same schemas the server validates with. */
import { describe, expect, test } from 'bun:test'
import { startFixture } from './support/harness'

const f = await startFixture()
const doc = (await f.call('GET', '/docs/json')).body as {
  info: { title: string; version: string }
  paths: Record<string, Record<string, any>>
}

const ROUTES: [string, string, string[]][] = [
  ['get', '/foreman/ping', ['200']],
  ['post', '/foreman/jobs', ['200', '201', '400', '409', '413']],
  ['post', '/foreman/jobs/batch', ['200', '400', '413']],
  ['get', '/foreman/jobs', ['200', '400']],
  ['get', '/foreman/jobs/{id}', ['200', '400', '404']],
  ['get', '/foreman/jobs/{id}/runs', ['200', '400', '404']],
  ['post', '/foreman/jobs/{id}/cancel', ['200', '400', '404']],
  ['post', '/foreman/jobs/{id}/retry', ['200', '400', '404', '409']],
  ['delete', '/foreman/jobs/{id}', ['200', '400', '404', '409']],
  ['post', '/foreman/jobs/bulk', ['200', '400']],
  ['post', '/foreman/claim', ['200', '204', '400']],
  ['post', '/foreman/jobs/claim', ['200', '204', '400']],
  ['post', '/foreman/claims', ['200', '400', '413']],
  ['post', '/foreman/runs/complete', ['200', '400', '413']],
  ['post', '/foreman/jobs/{id}/heartbeat', ['200', '400', '404', '409']],
  ['post', '/foreman/jobs/{id}/complete', ['200', '400', '404', '409']],
  ['post', '/foreman/jobs/{id}/fail', ['200', '400', '404', '409']],
  ['post', '/foreman/runs/{id}/heartbeat', ['200', '400', '404', '409']],
  ['post', '/foreman/runs/{id}/complete', ['200', '400', '404', '409']],
  ['post', '/foreman/runs/{id}/fail', ['200', '400', '404', '409']],
  ['get', '/foreman/runs', ['200', '400']],
  ['get', '/foreman/runs/{id}', ['200', '400', '404']],
  ['get', '/foreman/events/{id}', ['200', '400', '404']],
  ['get', '/foreman/events', ['200', '400']],
  ['get', '/foreman/healthz', ['200']],
  ['get', '/foreman/readyz', ['200', '503']],
  ['get', '/foreman/metrics', ['200']],
  ['post', '/foreman/schedules', ['201', '400']],
  ['get', '/foreman/schedules', ['200', '400']],
  ['get', '/foreman/schedules/{id}', ['200', '400', '404']],
  ['put', '/foreman/schedules/{id}', ['200', '400', '404']],
  ['delete', '/foreman/schedules/{id}', ['200', '400', '404']],
  ['post', '/foreman/schedules/{id}/fire', ['200', '400', '404']],
  ['get', '/foreman/queues', ['200']],
  ['post', '/foreman/queues/{queue}/pause', ['200', '400']],
  ['post', '/foreman/queues/{queue}/resume', ['200', '400']],
  ['put', '/foreman/limits/{kind}', ['200', '400']],
  ['get', '/foreman/limits', ['200']],
  ['get', '/foreman/limits/{kind}', ['200', '400', '404']],
  ['delete', '/foreman/limits/{kind}', ['200', '400', '404']],
  ['get', '/foreman/workers', ['200']],
  ['get', '/foreman/stats', ['200', '400']],
  ['get', '/foreman/database', ['200']],
]

describe('OpenAPI document at /foreman/docs/json', () => {
  test('names Foreman and its version', async () => {
    const ping = await f.call('GET', '/ping')
    expect(doc.info.title).toBe('Foreman')
    expect(ping.body.message).toBe(`Foreman v${doc.info.version} is online!`)
  })

  for (const [method, path, statuses] of ROUTES) {
    test(`${method.toUpperCase()} ${path} has a summary and documents ${statuses.join(', ')}`, () => {
      const operation = doc.paths[path]?.[method]
      expect(operation).toBeDefined()
      expect(typeof operation.summary).toBe('string')
      expect(operation.summary.length).toBeGreaterThan(3)
      for (const status of statuses) expect(Object.keys(operation.responses)).toContain(status)
    })
  }

  test('request bodies carry the validation schema (required fields, strict integers)', () => {
    const enqueue = doc.paths['/foreman/jobs']!.post.requestBody.content['application/json'].schema
    expect(enqueue.required).toEqual(['kind'])
    expect(enqueue.properties.priority.type).toBe('integer')
    const claim = doc.paths['/foreman/claim']!.post.requestBody.content['application/json'].schema
    expect(claim.required).toEqual(expect.arrayContaining(['kinds', 'worker_id']))
    expect(claim.properties.kinds.minItems).toBe(1)
    const batch = doc.paths['/foreman/jobs/batch']!.post.requestBody.content['application/json'].schema
    expect([batch.properties.jobs.minItems, batch.properties.jobs.maxItems]).toEqual([1, 1000])
    expect(batch.properties.jobs.items.required).toEqual(['kind'])
    expect(Object.keys(batch.properties.jobs.items.properties)).not.toContain('wait_seconds')
  })

  test('responses carry the job schema', () => {
    const created = doc.paths['/foreman/jobs']!.post.responses['201'].content['application/json'].schema
    const props = created.properties ?? {}
    expect(Object.keys(props)).toEqual(expect.arrayContaining(['id', 'kind', 'status', 'attempt_count', 'result']))
    const debounced = doc.paths['/foreman/jobs']!.post.responses['200'].content['application/json'].schema
    expect(Object.keys(debounced.properties ?? {})).toEqual(expect.arrayContaining(['id', 'status', 'debounced']))
    expect(debounced.required).toContain('debounced')
  })
})

test('Swagger UI is served at /foreman/docs', async () => {
  const res = await f.app.handle(new Request('http://localhost/foreman/docs'))
  expect(res.status).toBe(200)
  const html = await res.text()
  expect(html.toLowerCase()).toContain('swagger')
  // The UI loads the document by a URL relative to the page: it must land on ours.
  const specUrl = html.match(/"url":"([^"]+)"/)?.[1] ?? ''
  expect(new URL(specUrl, 'http://localhost/foreman/docs').pathname).toBe('/foreman/docs/json')
})
