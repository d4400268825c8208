/**
 * The fuzzer's own checks: the oracle catches what it must (a planted 5xx, a hang,
 * a non-JSON refusal, SQL text, a refusal that changed data), and the generators
 * make what their names promise. A fuzzer whose oracle cannot fail proves nothing.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import fc from 'fast-check'
import { caseArb, renderCase } from './fuzz-support/cases'
import { applyTextOp, injectBadUtf8 } from './fuzz-support/junk'
import { applyMutations, deepText } from './fuzz-support/mutate'
import type { Route } from './fuzz-support/openapi'
import { judge } from './fuzz-support/oracle'
import { type Outcome, send } from './fuzz-support/send'
import { PoolRef, Raw, serialize, setKey, type Val } from './fuzz-support/values'

const ok = (status: number, text: string, contentType = 'application/json'): Outcome => ({
  status,
  contentType,
  text,
  hung: false,
  ms: 1,
})
const plain = { method: 'POST', requestText: '', dataChanged: false }
const kinds = (o: Outcome, j = plain) => judge(o, j).map((p) => p.kind)

describe('the oracle', () => {
  test('passes a 2xx and a JSON refusal', () => {
    expect(kinds(ok(201, '{"id":"job_1"}'))).toEqual([])
    expect(kinds(ok(400, '{"error":"kind: is required"}'))).toEqual([])
    expect(kinds(ok(204, '', ''))).toEqual([])
  })

  test('catches a planted 5xx, a hang and a dropped connection', () => {
    expect(kinds(ok(500, '{"error":"internal server error"}'))).toEqual(['fivexx'])
    expect(kinds(ok(503, ''))).toEqual(['fivexx'])
    expect(kinds({ ...ok(0, ''), hung: true })).toEqual(['hang'])
    expect(kinds({ ...ok(0, ''), failure: 'ECONNRESET' })).toEqual(['no-answer'])
  })

  test('catches a refusal that is not JSON with a string error', () => {
    expect(kinds(ok(413, '', ''))).toEqual(['non-json-refusal'])
    expect(kinds(ok(400, 'Bad Request', 'text/plain'))).toEqual(['non-json-refusal'])
    expect(kinds(ok(404, '{"message":"NOT_FOUND"}'))).toEqual(['non-json-refusal'])
    expect(kinds(ok(422, '{"error":{"type":"validation"}}'))).toEqual(['non-json-refusal'])
  })

  test('catches SQL text and stack traces, unless the request carried them', () => {
    const leak = ok(400, '{"error":"syntax error at or near \\"x\\""}')
    expect(kinds(leak)).toEqual(['leaked-sql'])
    expect(kinds(leak, { ...plain, requestText: 'params: syntax error at or near' })).toEqual([])
    expect(kinds(ok(400, '{"error":"x","stack":"    at handle (/src/app.ts:1)"}'))).toEqual(['leaked-internals'])
  })

  test('catches a refusal that changed the stored data; a 2xx may change it', () => {
    expect(kinds(ok(409, '{"error":"dup"}'), { ...plain, dataChanged: true })).toEqual(['refused-changed-data'])
    expect(kinds(ok(201, '{}'), { ...plain, dataChanged: true })).toEqual([])
  })

  test('lets HTTP-layer refusals (malformed framing) be empty, but not 5xx', () => {
    const layer = { ...plain, httpLayer: true }
    expect(kinds(ok(400, '', ''), layer)).toEqual([])
    expect(kinds({ ...ok(0, ''), failure: 'closed' }, layer)).toEqual([])
    expect(kinds(ok(500, '', ''), layer)).toEqual(['fivexx'])
  })
})

describe('send', () => {
  // A stub server that misbehaves on purpose: the oracle must see each failure through a real socket.
  const stub = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const path = new URL(req.url).pathname
      if (path === '/hang') await Bun.sleep(3000)
      if (path === '/500') return Response.json({ error: 'boom' }, { status: 500 })
      if (path === '/text') return new Response('nope', { status: 400 })
      return Response.json({ ok: true })
    },
  })
  afterAll(() => stub.stop(true))
  const at = (path: string) => ({
    method: 'GET',
    url: `http://127.0.0.1:${stub.port}${path}`,
    headers: {},
    chunks: null,
    label: path,
    bodyText: '',
  })

  test('reports a planted 5xx, a non-JSON refusal and a hang past the deadline', async () => {
    expect(kinds(await send(at('/500')))).toEqual(['fivexx'])
    expect(kinds(await send(at('/text')))).toEqual(['non-json-refusal'])
    expect(kinds(await send(at('/hang'), 300))).toEqual(['hang'])
    expect(kinds(await send(at('/fine')))).toEqual([])
  })
})

describe('the generators', () => {
  const resolve = (ref: PoolRef) => `job_${ref.index}`

  test('deep nesting is built as text, 100,000 levels without recursion', () => {
    const text = deepText(100_000, 0)
    expect(text.length).toBe(200_001)
    expect(() => JSON.parse(deepText(64, 1))).not.toThrow()
  })

  test('mutations put NUL, lone surrogates and raw numbers where they say', () => {
    const body: Val = { kind: 'k', params: { a: 'b' } }
    const nul = serialize(applyMutations(body, [{ op: 'nul', at: 1, n: 0 }]).value, resolve)
    expect(JSON.parse(nul).kind).toContain('\u0000')
    const lone = serialize(applyMutations(body, [{ op: 'surrogate', at: 1, n: 0 }]).value, resolve)
    expect(lone).toContain('\\ud800')
    const raw = serialize(applyMutations(body, [{ op: 'number', at: 1, n: 11 }]).value, resolve)
    expect(raw).toBe('{"kind":1e999,"params":{"a":"b"}}')
  })

  test('__proto__ stays an own key, and pool references resolve at render time', () => {
    const obj: { [key: string]: Val } = {}
    setKey(obj, '__proto__', { polluted: true })
    expect(serialize(obj, resolve)).toBe('{"__proto__":{"polluted":true}}')
    expect(serialize([new PoolRef('jobPending', 7), new Raw('-0', 'zero')], resolve)).toBe('["job_7",-0]')
  })

  test('text and byte junk is what it claims', () => {
    expect(applyTextOp('{"kind":"x"}', 'duplicateKey', 0)).toBe('{"kind":5,"kind":"x"}')
    expect([...injectBadUtf8('{"kind":"x"}', 2)].slice(9, 11)).toEqual([0xc0, 0x80])
  })

  test('every case of a route renders to a request on that route', () => {
    const route: Route = {
      method: 'POST',
      path: '/foreman/jobs/{id}/cancel',
      key: 'POST /foreman/jobs/{id}/cancel',
      pathParams: { id: { type: 'string', pattern: '^job_[0-9A-HJKMNP-TV-Z]{26}$' } },
      query: [],
    }
    fc.assert(
      fc.property(caseArb(route), (c) => {
        const r = renderCase(route, c, 'http://h', resolve)
        expect(r.url.startsWith('http://h/foreman/jobs/')).toBe(true)
      }),
      { numRuns: 200 },
    )
  })
})
