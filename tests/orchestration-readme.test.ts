/**
 * The README's Orchestration example, as written there: fan out thumbnails, then
 * join them into a zip, by curl (one batch with refs) and from TypeScript (a
 * graph and a Worker whose zip step reads ctx.dependencies).
 */
import { afterAll, expect, test } from 'bun:test'
import { readFile } from 'node:fs/promises'
import { ForemanClient, Worker } from '../src/client'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const foreman = new ForemanClient({ baseUrl: f.serve() })
const workers: Worker[] = []
afterAll(() => Promise.all(workers.map((w) => w.stop(500))))

test("the README's curl graph is accepted as written and waits as described", async () => {
  const readme = await readFile(new URL('../README.md', import.meta.url), 'utf8')
  const section = readme.slice(readme.indexOf('## Orchestration'))
  const body = section.match(/-d '(\{"jobs": \[[\s\S]*?\]\})'/)?.[1]
  expect(body).toBeDefined()
  const res = await f.call('POST', '/jobs/batch', body as string)
  expect(res.status).toBe(200)
  expect(res.body.jobs.map((j: { job: { kind: string; status: string } }) => [j.job.kind, j.job.status])).toEqual([
    ['thumbnail', 'pending'],
    ['thumbnail', 'pending'],
    ['thumbnail', 'pending'],
    ['zip', 'waiting'],
  ])
  expect(Object.keys(res.body.refs)).toEqual(['a', 'b', 'c', 'zip'])
  const dependents = await f.call('GET', `/jobs/${res.body.refs.a}/dependents`)
  expect(dependents.body.map((j: { id: string }) => j.id)).toEqual([res.body.refs.zip])
  // Sent again, the same graph creates nothing (each node has its key).
  const again = await f.call('POST', '/jobs/batch', body as string)
  expect(again.body.refs).toEqual(res.body.refs)
  expect(again.body.jobs.every((j: { created: boolean }) => !j.created)).toBe(true)
})

test('the TypeScript version: the zip runs once, after every thumbnail, with their urls', async () => {
  const thumbnail = uniqueKind('thumbnail')
  const zip = uniqueKind('zip')
  const photos = ['a.jpg', 'b.jpg', 'c.jpg']
  const { refs } = await foreman.enqueueGraph([
    ...photos.map((photo) => ({ ref: photo, kind: thumbnail, params: { photo } })),
    { ref: 'zip', kind: zip, params: { album: 7 }, depends_on: photos },
  ])
  const zipped: string[][] = []
  const w = new Worker(foreman, { concurrency: 8, waitSeconds: 1 })
    .handle(thumbnail, async (job) => ({ url: `https://cdn/${(job.params as { photo: string }).photo}.thumb` }))
    .handle(zip, async (_job, ctx) => {
      const urls = ctx.dependencies.map((d) => (d.result as { url: string }).url)
      zipped.push(urls)
      return { zip: `album-7.zip (${urls.length} files)` }
    })
    .start()
  workers.push(w)
  const deadline = Date.now() + 20_000
  while ((await foreman.getJob(refs.zip as string)).status !== 'succeeded') {
    if (Date.now() > deadline) throw new Error('the zip never ran')
    await Bun.sleep(50)
  }
  expect(zipped).toEqual([photos.map((p) => `https://cdn/${p}.thumb`)])
})
