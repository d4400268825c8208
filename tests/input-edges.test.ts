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
