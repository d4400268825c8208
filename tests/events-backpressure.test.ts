/**
 * A client that opens GET /events and stops reading must not cost the server
 * memory without bound: its stream is ended once a byte budget of unread events
 * is queued (it resumes with Last-Event-ID). Measured on the real server process,
 * whose RSS is read from /proc. Here too: the cap on open streams (a JSON 503 with
 * Retry-After) and the slot a closed stream gives back.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { resolve } from 'node:path'
import { createSql } from '../src/db/client'
import { dropTables } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { uniqueKind } from './support/factories'
import { uniquePrefix } from './support/harness'

const ENTRY = resolve(import.meta.dir, '..', 'src', 'index.ts')
const MB = 1024 * 1024

/** A Foreman process on the test database under a table prefix of its own. */
interface ServerProcess {
  child: ReturnType<typeof Bun.spawn>
  port: number
  base: string
  prefix: string
  stop(): Promise<void>
}

const started: ServerProcess[] = []
afterAll(async () => {
  for (const server of started) await server.stop()
})

/** Starts `bun src/index.ts` on a free port and waits for its "listening" line. */
async function startServer(extra: Record<string, string> = {}): Promise<ServerProcess> {
  const url = process.env.DATABASE_URL
  if (!url) throw new Error('DATABASE_URL is not set: the test preload did not run')
  const prefix = uniquePrefix()
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('DATABASE_') && !key.startsWith('FOREMAN_')) env[key] = value
  }
  Object.assign(env, { PORT: '0', DATABASE_URL: url, FOREMAN_TABLE_PREFIX: prefix }, extra)
  const child = Bun.spawn([process.execPath, ENTRY], { env, stdout: 'pipe', stderr: 'inherit' })
  const reader = child.stdout.getReader()
  const decoder = new TextDecoder()
  let seen = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`server exited before listening:\n${seen}`)
    seen += decoder.decode(value)
    const port = seen.match(/listening on :(\d+)/)?.[1]
    if (!port) continue
    // Keep draining stdout so the child never blocks on a full pipe.
    void (async () => {
      while (!(await reader.read()).done) {}
    })()
    let stopped = false
    const server: ServerProcess = {
      child,
      port: Number(port),
      base: `http://127.0.0.1:${port}/foreman`,
      prefix,
      async stop() {
        if (stopped) return
        stopped = true
        child.kill('SIGTERM')
        await child.exited
        const sql = createSql({ url, max: 1, applicationName: 'foreman-test' })
        await dropTables(sql, tablesFor(prefix)).finally(() => sql.end({ timeout: 5 }))
      },
    }
    started.push(server)
    return server
  }
}

/** The process's resident set size in bytes, as the kernel counts it. */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kb = status.match(/^VmRSS:\s+(\d+) kB/m)?.[1]
  if (!kb) throw new Error(`no VmRSS for ${pid}`)
  return Number(kb) * 1024
}

/** The value of a label-free series on GET /metrics (undefined when absent). */
async function metric(server: ServerProcess, name: string): Promise<number | undefined> {
  const text = await (await fetch(`${server.base}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${name} `))
  return line === undefined ? undefined : Number(line.slice(name.length + 1))
}

/** Enqueues `batches` of 100 jobs with 8 KiB of params each, two at a time; `after` runs after each. */
async function enqueueBatches(server: ServerProcess, kind: string, batches: number, after = async () => {}) {
  const filler = 'x'.repeat(8 * 1024)
  const body = JSON.stringify({ jobs: Array.from({ length: 100 }, () => ({ kind, params: { filler } })) })
  let sent = 0
  const lane = async () => {
    while (sent < batches) {
      sent++
      const res = await fetch(`${server.base}/jobs/batch`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
      })
      expect(res.status).toBe(200)
      await res.arrayBuffer()
      await after()
    }
  }
  await Promise.all([lane(), lane()])
}

/**
 * Opens GET /events over a raw socket, takes the response head, then stops
 * reading: the server's writes back up into the socket buffers and then its own.
 */
function stalledStream(server: ServerProcess): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolveOpen, reject) => {
    const socket = connect(server.port, '127.0.0.1', () => {
      socket.write(
        `GET /foreman/events HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n`,
      )
    })
    socket.once('error', reject)
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      resolveOpen({ socket, head: chunk.toString('latin1') })
    })
  })
}

/** Resolves when the server has closed the connection (read to its end). */
function closedByServer(socket: Socket): Promise<void> {
  return new Promise((resolveClosed) => {
    socket.on('data', () => {})
    socket.once('close', () => resolveClosed())
    socket.resume()
  })
}

describe('a client that stops reading', () => {
  test('costs the server under 64 MB of RSS while 20,000 jobs change, and its stream is ended', async () => {
    const server = await startServer()
    const kind = uniqueKind('stalled')

    // Warm up the same paths (enqueue, the feed, a stream that reads) so the
    // baseline is the working process, not a cold one.
    const warm = await fetch(`${server.base}/events`)
    const warmReader = warm.body?.getReader()
    await enqueueBatches(server, kind, 10)
    await warmReader?.cancel()
    const baseline = await rssOf(server.child.pid)

    const { socket, head } = await stalledStream(server)
    expect(head).toStartWith('HTTP/1.1 200')
    const openWhileStalled = await metric(server, 'foreman_event_streams_open')

    let peak = baseline
    const sample = async () => {
      peak = Math.max(peak, await rssOf(server.child.pid))
    }
    await enqueueBatches(server, kind, 200, sample)

    // The last re-reads may still be on their way to the stream: wait for it to
    // end (or, unfixed, for the backlog to pile up), sampling all along.
    for (let i = 0; i < 40 && (await metric(server, 'foreman_event_streams_open')) !== 0; i++) {
      await sample()
      await Bun.sleep(250)
    }
    await sample()
    const growthMb = Math.round((peak - baseline) / MB)
    console.log(`stalled SSE client: server RSS ${Math.round(baseline / MB)} MB -> peak ${Math.round(peak / MB)} MB`)
    expect(growthMb).toBeLessThan(64)
    expect(openWhileStalled).toBe(1)
    expect(await metric(server, 'foreman_event_streams_open')).toBe(0)
    // What the kernel still held for the client drains, then the connection ends.
    await closedByServer(socket)
  }, 240_000)
})
