/**
 * The real Foreman as a child process (`bun src/index.ts`, as `npm start` runs it),
 * on a port chosen up front so a restart after kill -9 comes back at the same
 * address and the workers need not be told. Logs at warn: the server then writes
 * one line per 5xx answer, which the scenarios count.
 */
import { resolve } from 'node:path'
import { cleanEnv, drain, freePort, sleep, track } from './processes'
import { REAPER_INTERVAL_SEC } from './scale'

const ENTRY = resolve(import.meta.dir, '..', '..', '..', 'src', 'index.ts')

/** How to start one Foreman. */
export interface ServerOptions {
  databaseUrl: string
  prefix: string
  /** Extra FOREMAN_* settings. */
  env?: Record<string, string>
  /** Label in figures and failure messages. */
  name?: string
}

/** One Foreman server process that can be killed, terminated and started again on its port. */
export class ForemanServer {
  readonly name: string
  port = 0
  private proc: ReturnType<typeof Bun.spawn> | undefined
  /** The last lines of output (for failure messages). */
  readonly tail: string[] = []
  /** 5xx answers the server logged, over all its lives. */
  fivexx = 0
  /** Starts so far (1 + restarts). */
  starts = 0

  constructor(private readonly options: ServerOptions) {
    this.name = options.name ?? 'foreman'
  }

  /** `http://127.0.0.1:<port>` (the client adds /foreman). */
  get origin(): string {
    return `http://127.0.0.1:${this.port}`
  }

  /** The pid of the current process. */
  get pid(): number | undefined {
    return this.proc?.pid
  }

  /** Starts the process (same port as before, after the first start) and waits until readyz answers 200. */
  async start(readyTimeoutMs = 60_000): Promise<void> {
    if (this.port === 0) this.port = await freePort()
    const env = cleanEnv({
      PORT: String(this.port),
      ENV: 'PROD',
      LOG_LEVEL: 'warn',
      DATABASE_URL: this.options.databaseUrl,
      FOREMAN_TABLE_PREFIX: this.options.prefix,
      FOREMAN_REAPER_INTERVAL_SEC: String(REAPER_INTERVAL_SEC),
      FOREMAN_SHUTDOWN_TIMEOUT_SEC: '10',
      FOREMAN_EVENTS_POLL_SEC: '2',
      ...this.options.env,
    })
    const proc = Bun.spawn([process.execPath, ENTRY], { env, stdout: 'pipe', stderr: 'pipe' })
    this.proc = proc
    this.starts++
    track({ pid: proc.pid, exited: proc.exited, kill: (s) => proc.kill(s) })
    const sink = (line: string) => this.onLine(line)
    drain(proc.stdout as ReadableStream<Uint8Array>, sink).catch(() => {})
    drain(proc.stderr as ReadableStream<Uint8Array>, sink).catch(() => {})
    const deadline = Date.now() + readyTimeoutMs
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) break
      try {
        const res = await fetch(`${this.origin}/foreman/readyz`, { signal: AbortSignal.timeout(2000) })
        if (res.status === 200) return
      } catch {}
      await sleep(100)
    }
    proc.kill('SIGKILL')
    throw new Error(`${this.name} did not become ready on :${this.port}:\n${this.tail.join('\n')}`)
  }

  /** kill -9; resolves once the process is gone. */
  async kill9(): Promise<void> {
    const proc = this.proc
    if (!proc) return
    proc.kill('SIGKILL')
    await proc.exited
  }

  /** SIGTERM; resolves with the exit code once the process has drained and exited. */
  async terminate(): Promise<number> {
    const proc = this.proc
    if (!proc) return 0
    proc.kill('SIGTERM')
    return proc.exited
  }

  /** Stops the process however it is (SIGTERM, then SIGKILL after 15 s). */
  async stop(): Promise<void> {
    const proc = this.proc
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    proc.kill('SIGTERM')
    const late = setTimeout(() => proc.kill('SIGKILL'), 15_000)
    await proc.exited
    clearTimeout(late)
  }

  private onLine(line: string): void {
    this.tail.push(line)
    if (this.tail.length > 200) this.tail.shift()
    if (line.includes('"msg":"request"') && /"status":5\d\d/.test(line)) this.fivexx++
  }
}
