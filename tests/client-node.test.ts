/**
 * The client bundle Node imports (`exports["./client"].default`): built here into a
 * temporary folder exactly as `npm run build:client` builds it, then run by Node 20+
 * against a real server. Proves the client needs nothing but `fetch` at run time.
 */
import { expect, test } from 'bun:test'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'

const f = await startFixture()
const base = f.serve()

test('Node imports the built client and drives ping, enqueue, claim and complete through it', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'foreman-client-'))
  try {
    const outfile = join(dir, 'index.js')
    const build = Bun.spawnSync(
      [process.execPath, 'build', 'src/client/index.ts', '--target=node', '--format=esm', '--outfile', outfile],
      { stderr: 'pipe' },
    )
    expect(build.exitCode, build.stderr.toString()).toBe(0)
    const bundle = await readFile(outfile, 'utf8')
    // Types only from the server: no elysia, postgres or typebox in the bundle.
    expect(bundle).not.toMatch(/from ["'](elysia|postgres|@sinclair\/typebox)/)

    const kind = uniqueKind('node')
    const script = `
      import { ForemanClient, Worker } from ${JSON.stringify(outfile)}
      const foreman = new ForemanClient({ baseUrl: process.env.BASE })
      const ping = await foreman.ping()
      const { job } = await foreman.enqueue({ kind: process.env.KIND, params: { n: 2 } })
      const worker = new Worker(foreman, { waitSeconds: 1 }).handle(process.env.KIND, (j) => j.params.n * 10).start()
      let done
      for await (const e of foreman.events({ jobId: job.id })) done = e.job
      await worker.stop()
      console.log(JSON.stringify({ ping: ping.message, status: done.status, result: done.result }))
    `
    const node = Bun.spawn(['node', '--input-type=module', '-e', script], {
      env: { ...process.env, BASE: base, KIND: kind },
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const [code, out, err] = await Promise.all([
      node.exited,
      new Response(node.stdout).text(),
      new Response(node.stderr).text(),
    ])
    expect(code, err).toBe(0)
    const answer = JSON.parse(out.trim())
    expect(answer).toEqual({ ping: expect.stringMatching(/^Foreman v/), status: 'succeeded', result: 20 })
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
})
