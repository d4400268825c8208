import { expect, test } from 'bun:test'
import { startFixture } from './support/harness'

const f = await startFixture()

test('enqueue, claim, complete', async () => {
  const enq = await f.call('POST', '/jobs', { kind: 'k', params: { a: 1 } })
  expect(enq.status).toBe(201)
  const c = await f.call('POST', '/claim', { kinds: ['k'], worker_id: 'w' })
  console.log(c.status, c.body)
  expect(c.status).toBe(200)
  const hb = await f.call('POST', `/runs/${c.body.run.id}/heartbeat`, { worker_id: 'w', progress_current: 3 })
  console.log(hb.status, hb.body)
  const done = await f.call('POST', `/jobs/${enq.body.id}/complete`, '{"worker_id":"w","result":{"ok":true}}')
  console.log(done.status, done.body)
  expect(done.body.status).toBe('succeeded')
  const runs = await f.call('GET', `/jobs/${enq.body.id}/runs`)
  console.log(runs.body)
})
