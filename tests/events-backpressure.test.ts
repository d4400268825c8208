/**
 * A client that opens GET /events and stops reading must not cost the server
 * memory without bound: its stream is ended once more than a byte budget of
 * events is unread (it resumes with Last-Event-ID). Measured on the real server
 * process, whose RSS is read from /proc. Here too: a reading client keeps its
 * stream through bursts and long replays (the cap on open streams is in
 * events-cap.test.ts).
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { readFile } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { resolve } from 'node:path'
import { toVersion } from '../src/events/sql'
import { type SseChannel, type SseEnd, sseResponse } from '../src/events/sse'
import { uniqueKind } from './support/factories'
import { startFixture } from './support/harness'
import { eventually, SseReader } from './support/sse-client'

const ENTRY = resolve(import.meta.dir, '..', 'src', 'index.ts')
const MB = 1024 * 1024
const FILLER = 'x'.repeat(8 * 1024)

// Batches of 500 jobs of 8 KiB are 4 MiB bodies; no safety poll, so what arrives comes by a hint.
const f = await startFixture({ maxBodyBytes: 16 * MB, eventsPollSec: 3600 })
const base = f.serve()

/** Enqueues `batches` × `size` jobs of `kind` with 8 KiB of params each; `after` runs after each batch. */
async function enqueueBatches(kind: string, batches: number, size: number, after = async () => {}) {
  const jobs = Array.from({ length: size }, () => ({ kind, params: { filler: FILLER } }))
  for (let i = 0; i < batches; i++) {
    expect((await f.call('POST', '/jobs/batch', { jobs })).status).toBe(200)
    await after()
  }
}

/** A Foreman process on the fixture's tables: another instance, hearing f's changes by NOTIFY. */
interface ServerProcess {
  child: ReturnType<typeof Bun.spawn>
  port: number
  base: string
  stop(): Promise<void>
}

const processes: ServerProcess[] = []
afterAll(async () => {
  for (const server of processes) await server.stop()
})

/** Starts `bun src/index.ts` on a free port on the fixture's tables and waits for its "listening" line. */
async function startServer(): Promise<ServerProcess> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('DATABASE_') && !key.startsWith('FOREMAN_')) env[key] = value
  }
  const url = process.env.DATABASE_URL ?? ''
  Object.assign(env, { PORT: '0', DATABASE_URL: url, FOREMAN_TABLE_PREFIX: f.tables.prefix })
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
    const server: ServerProcess = {
      child,
      port: Number(port),
      base: `http://127.0.0.1:${port}/foreman`,
      async stop() {
        if (child.exitCode === null) child.kill('SIGTERM')
        await child.exited
      },
    }
    processes.push(server)
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

/** A series' value on GET /metrics of `baseUrl` (undefined when absent). */
async function metric(baseUrl: string, series: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`)).text()
  const line = text.split('\n').find((l) => l.startsWith(`${series} `))
  return line === undefined ? undefined : Number(line.slice(series.length + 1))
}

const OPEN = 'foreman_event_streams_open'
const SHED_OVER_BUDGET = 'foreman_event_streams_shed_total{reason="over_budget"}'

/**
 * Opens GET /events over a raw socket, takes the response head, then stops
 * reading: the server's writes back up into the socket buffers and then its own.
 */
function stalledStream(port: number, path = '/events'): Promise<{ socket: Socket; head: string }> {
  return new Promise((resolveOpen, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`GET /foreman${path} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAccept: text/event-stream\r\n\r\n`)
    })
    socket.once('error', reject)
    socket.once('data', (chunk: Buffer) => {
      socket.pause()
      resolveOpen({ socket, head: chunk.toString('latin1') })
    })
  })
}

/** Reads what is left and resolves when the server has closed (or reset) the connection. */
function closedByServer(socket: Socket): Promise<void> {
  return new Promise((resolveClosed) => {
    socket.on('error', () => {})
    socket.on('data', () => {})
    socket.once('close', () => resolveClosed())
    socket.resume()
  })
}

describe('a client that stops reading', () => {
  test('costs the server process under 64 MB of RSS while 20,000 jobs change, and its stream is ended', async () => {
    // The changes are made by this process (another instance on the same tables),
    // so the server's RSS measures its streams, not the GC swings of parsing 200
    // request bodies (those alone moved it by 81 MB).
    const server = await startServer()
    const kind = uniqueKind('stalled')

    // Warm up the paths the stream uses (NOTIFY, re-read, a stream that reads).
    const warm = await SseReader.open(`${server.base}/events?kind=${kind}`)
    await enqueueBatches(kind, 10, 100)
    await warm.next(1000, 30_000)
    warm.close()
    for (let i = 0; i < 100 && (await metric(server.base, OPEN)) !== 0; i++) await Bun.sleep(50)
    const baseline = await rssOf(server.child.pid)

    const { socket, head } = await stalledStream(server.port)
    expect(head).toStartWith('HTTP/1.1 200')
    const openWhileStalled = await metric(server.base, OPEN)

    let peak = baseline
    const sample = async () => {
      peak = Math.max(peak, await rssOf(server.child.pid))
    }
    await enqueueBatches(kind, 200, 100, sample)
    // The last changes may still be on their way to the stream: wait for it to
    // end (or, unfixed, for the backlog to pile up), sampling all along.
    for (let i = 0; i < 40 && (await metric(server.base, OPEN)) !== 0; i++) {
      await sample()
      await Bun.sleep(250)
    }
    await sample()
    console.log(`stalled SSE client: server RSS ${Math.round(baseline / MB)} MB, peak ${Math.round(peak / MB)} MB`)
    expect(Math.round((peak - baseline) / MB)).toBeLessThan(64)
    expect(openWhileStalled).toBe(1)
    expect(await metric(server.base, OPEN)).toBe(0)
    expect(await metric(server.base, SHED_OVER_BUDGET)).toBe(1)
    // What the kernel still held for the client drains, then the connection ends.
    await closedByServer(socket)
    await server.stop()
  }, 240_000)
})

describe('the byte budget', () => {
  /** A stream nobody reads, with a 64 KiB budget; answers its channel and how it ended. */
  function unreadStream() {
    let channel!: SseChannel
    const ended: SseEnd[] = []
    let cleanups = 0
    const response = sseResponse(
      (c) => {
        channel = c
        return () => cleanups++
      },
      { keepAliveMs: 3_600_000, retryMs: 1000, budgetBytes: 64 * 1024, onEnd: (why) => ended.push(why) },
    )
    return { response, channel, ended, cleanups: () => cleanups }
  }
  const event = (i: number) => ({ i, filler: 'y'.repeat(10 * 1024) })

  test('a stream nobody reads is ended when more arrives while over its budget, and cleans up once', async () => {
    const s = unreadStream()
    for (let i = 0; i < 6; i++) {
      s.channel.send('job', event(i))
      await Bun.sleep(0)
    }
    expect(s.channel.closed).toBe(false)
    for (let i = 6; i < 12; i++) {
      s.channel.send('job', event(i))
      await Bun.sleep(0)
    }
    expect(s.channel.closed).toBe(true)
    expect(s.ended).toEqual(['over-budget'])
    expect(s.cleanups()).toBe(1)
    // Ended with an error: the unread events are dropped, not kept for a reader.
    let dropped = false
    await s.response.text().catch(() => {
      dropped = true
    })
    expect(dropped).toBe(true)
  })

  test('one burst larger than the budget is sent whole; the next burst finds it unread and ends the stream', async () => {
    const s = unreadStream()
    for (let i = 0; i < 20; i++) s.channel.send('job', event(i))
    expect(s.channel.closed).toBe(false)
    await Bun.sleep(0)
    s.channel.send('job', event(20))
    expect(s.ended).toEqual(['over-budget'])
  })

  test('a paced producer waits for room: hasRoom turns false at half the budget and room() resolves once read', async () => {
    const s = unreadStream()
    for (let i = 0; i < 4 && s.channel.hasRoom; i++) s.channel.send('job', event(i))
    expect(s.channel.hasRoom).toBe(false)
    let roomy = false
    const waiting = s.channel.room().then(() => {
      roomy = true
    })
    await Bun.sleep(10)
    expect(roomy).toBe(false)
    const reader = s.response.body?.getReader()
    while (!roomy) await reader?.read()
    await waiting
    expect(s.channel.closed).toBe(false)
    s.channel.close()
    expect(s.ended).toEqual(['closed'])
  })

  test("a client that stops reading one job's stream has it ended too, while the job's progress changes", async () => {
    const kind = uniqueKind('stalled-job')
    const job = (await f.call('POST', '/jobs', { kind, params: { filler: FILLER.repeat(8) } })).body
    const { run } = (await f.call('POST', '/claim', { kinds: [kind], worker_id: 'w' })).body
    const openBefore = f.deps.events.streams.open
    const shedBefore = (await metric(base, SHED_OVER_BUDGET)) ?? -1
    const { socket, head } = await stalledStream(Number(new URL(base).port), `/events/${job.id}`)
    expect(head).toStartWith('HTTP/1.1 200')
    expect(f.deps.events.streams.open).toBe(openBefore + 1)
    // Each heartbeat is one event of about 64 KiB; the socket buffers take a few MB first.
    for (let i = 1; i <= 1000 && f.deps.events.streams.open > openBefore; i++) {
      const beat = await f.call('POST', `/runs/${run.id}/heartbeat`, { worker_id: 'w', progress_current: i })
      expect(beat.status).toBe(200)
    }
    await eventually(() => f.deps.events.streams.open === openBefore, 10_000, 'the stalled stream to end')
    expect(await metric(base, SHED_OVER_BUDGET)).toBe(shedBefore + 1)
    await closedByServer(socket)
  }, 60_000)

  test('a client that stops reading during a resume is ended once changes pile up behind the paused replay', async () => {
    const kind = uniqueKind('stalled-replay')
    const since = new Date(Date.now() - 1000).toISOString()
    await enqueueBatches(kind, 6, 500)
    const openBefore = f.deps.events.streams.open
    const { socket } = await stalledStream(Number(new URL(base).port), `/events?kind=${kind}&since=${since}`)
    expect(f.deps.events.streams.open).toBe(openBefore + 1)
    // The replay waits for a reader that never comes; live changes queue up behind it.
    const small = Array.from({ length: 100 }, () => ({ kind }))
    for (let i = 0; i < 30 && f.deps.events.streams.open > openBefore; i++) {
      expect((await f.call('POST', '/jobs/batch', { jobs: small })).status).toBe(200)
      await Bun.sleep(20)
    }
    await eventually(() => f.deps.events.streams.open === openBefore, 10_000, 'the stalled stream to end')
    await closedByServer(socket)
  }, 60_000)

  test('a batch of 600 changes reaches a stream in bursts of at most 250 jobs', async () => {
    const kind = uniqueKind('bursts')
    const bursts: number[] = []
    let inBurst = false
    const unwatch = f.deps.events.feed.watchAll({
      from: { version: toVersion(Date.now()), id: '' },
      filter: { kind },
      deliver: () => {
        if (!inBurst) {
          inBurst = true
          bursts.push(0)
          queueMicrotask(() => {
            inBurst = false
          })
        }
        bursts[bursts.length - 1] = (bursts.at(-1) ?? 0) + 1
      },
      resync: () => {},
    })
    await f.call('POST', '/jobs/batch', { jobs: Array.from({ length: 600 }, () => ({ kind })) })
    await eventually(() => bursts.reduce((a, b) => a + b, 0) === 600, 10_000, '600 deliveries')
    unwatch()
    expect(Math.max(...bursts)).toBeLessThanOrEqual(250)
  })

  test('a reading client keeps its stream when 4 MiB of changes arrive at once, twice', async () => {
    const kind = uniqueKind('burst')
    const shedBefore = await metric(base, SHED_OVER_BUDGET)
    const sse = await SseReader.open(`${base}/events?kind=${kind}`)
    await sse.until(() => sse.frames.length > 0, 10_000, 'the retry frame')
    await enqueueBatches(kind, 1, 500)
    expect((await sse.next(500, 30_000)).length).toBe(500)
    await enqueueBatches(kind, 1, 500)
    expect((await sse.next(500, 30_000)).length).toBe(500)
    expect(sse.done).toBe(false)
    expect(await metric(base, SHED_OVER_BUDGET)).toBe(shedBefore ?? -1)
    sse.close()
  }, 60_000)

  test('a resume replays a backlog of 12 MiB, many times the budget, at the pace of a slow reader', async () => {
    const kind = uniqueKind('replay-slow')
    const since = new Date(Date.now() - 1000).toISOString()
    await enqueueBatches(kind, 3, 500)
    const controller = new AbortController()
    const res = await fetch(`${base}/events?kind=${kind}&since=${since}`, { signal: controller.signal })
    expect(res.status).toBe(200)
    const reader = res.body?.getReader()
    const decoder = new TextDecoder()
    const ids = new Set<string>()
    let text = ''
    while (ids.size < 1500) {
      const chunk = await reader?.read()
      if (!chunk || chunk.done) break
      text += decoder.decode(chunk.value, { stream: true })
      for (const m of text.matchAll(/"id":"(job_[0-9A-Z]+)"/g)) ids.add(m[1] ?? '')
      text = text.slice(text.lastIndexOf('\n'))
      // About 3 MB/s: slower than the replay reads the tables.
      await Bun.sleep(20)
    }
    expect(ids.size).toBe(1500)
    expect(f.deps.events.streams.open).toBe(1)
    controller.abort()
  }, 60_000)
})
