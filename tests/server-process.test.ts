/**
 * The real process: `bun src/index.ts` as a child, as `npm start` runs it.
 * Embedded Postgres in the working directory, data surviving a restart, clean
 * exit on SIGTERM, and start-up refusing bad configuration.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const ENTRY = resolve(import.meta.dir, '..', 'src', 'index.ts')
const workDir = await mkdtemp(join(tmpdir(), 'foreman-proc-'))
await chmod(workDir, 0o755)
afterAll(() => rm(workDir, { recursive: true, force: true }))

/** The environment minus anything that would select an external database. */
function cleanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value === undefined || key.startsWith('DATABASE_')) continue
    // The preload's relocation folder stays, so a root run never writes to /var/lib/foreman.
    if (key.startsWith('FOREMAN_') && key !== 'FOREMAN_EMBEDDED_RELOCATION_DIR') continue
    env[key] = value
  }
  return { ...env, PORT: '0', ...extra }
}

/** Starts the server and waits for its "listening" line; answers the process and base URL. */
async function startServer(env: Record<string, string>) {
  const child = Bun.spawn([process.execPath, ENTRY], { cwd: workDir, env, stdout: 'pipe', stderr: 'pipe' })
  const lines: string[] = []
  const reader = child.stdout.getReader()
  const decoder = new TextDecoder()
  let buffered = ''
  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    const { value, done } = await reader.read()
    if (done) break
    buffered += decoder.decode(value)
    const parts = buffered.split('\n')
    buffered = parts.pop() ?? ''
    for (const line of parts) {
      lines.push(line)
      const port = line.match(/listening on :(\d+)/)?.[1]
      if (port) {
        // Keep draining stdout so the child never blocks on a full pipe.
        ;(async () => {
          for (;;) {
            const next = await reader.read()
            if (next.done) return
            lines.push(decoder.decode(next.value))
          }
        })()
        return { child, lines, base: `http://127.0.0.1:${port}/foreman` }
      }
    }
  }
  child.kill()
  throw new Error(`server did not start:\n${lines.join('\n')}\n${await new Response(child.stderr).text()}`)
}

describe('the server process', () => {
  test('serves on an embedded Postgres kept under the working directory, stops on SIGTERM, and keeps data across restarts', async () => {
    const first = await startServer(cleanEnv())
    expect(first.lines.join('\n')).toContain('starting embedded Postgres')
    const enqueued = await fetch(`${first.base}/jobs`, {
      method: 'POST',
      body: JSON.stringify({ kind: 'persisted', idempotency_key: 'restart-1' }),
    })
    expect(enqueued.status).toBe(201)
    const job = (await enqueued.json()) as { id: string }

    first.child.kill('SIGTERM')
    expect(await first.child.exited).toBe(0)
    expect(first.lines.join('\n')).toContain('"msg":"stopped"')

    const second = await startServer(cleanEnv())
    try {
      const again = await fetch(`${second.base}/jobs/${job.id}`)
      expect(again.status).toBe(200)
      expect(((await again.json()) as { id: string }).id).toBe(job.id)
    } finally {
      second.child.kill('SIGINT')
      expect(await second.child.exited).toBe(0)
    }
  }, 120_000)

  test('SIGTERM drains: a waiting claim answers 204, an SSE stream ends, and the process exits 0 well before the drain timeout', async () => {
    const server = await startServer(cleanEnv({ FOREMAN_SHUTDOWN_TIMEOUT_SEC: '20' }))
    const enqueued = await fetch(`${server.base}/jobs`, { method: 'POST', body: JSON.stringify({ kind: 'drain' }) })
    const job = (await enqueued.json()) as { id: string }
    const claim = fetch(`${server.base}/claim`, {
      method: 'POST',
      body: JSON.stringify({ kinds: ['nothing-here'], worker_id: 'w', wait_seconds: 30 }),
    })
    const stream = await fetch(`${server.base}/events/${job.id}`)
    const streamText = stream.text()
    await Bun.sleep(300)
    const signalled = performance.now()
    server.child.kill('SIGTERM')
    expect((await claim).status).toBe(204)
    expect(await streamText).toContain('event: job')
    expect(await server.child.exited).toBe(0)
    // Bounded by the waits ending at once, not by the 20 s drain timeout or the 30 s claim wait.
    expect(performance.now() - signalled).toBeLessThan(15_000)
    expect(server.lines.join('\n')).toContain('"msg":"stopped"')
  }, 60_000)

  const badConfigs: [string, string][] = [
    ['FOREMAN_TABLE_PREFIX', 'Bad-Prefix'],
    ['FOREMAN_REAPER_INTERVAL_SEC', 'often'],
    ['PORT', '-1'],
  ]
  for (const [variable, value] of badConfigs) {
    test(`refuses to start with ${variable}=${value}, naming the variable`, async () => {
      const child = Bun.spawn([process.execPath, ENTRY], {
        cwd: workDir,
        env: cleanEnv({ [variable]: value }),
        stdout: 'pipe',
        stderr: 'pipe',
      })
      expect(await child.exited).toBe(1)
      expect(await new Response(child.stderr).text()).toContain(variable)
    })
  }
})
