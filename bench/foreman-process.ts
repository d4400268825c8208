/**
 * A Foreman server as its own process, the way users run it: `bun <root>/src/index.ts`
 * on a free port and a fresh table prefix, ready once /readyz answers. Shared by
 * bench:peers and bench:before-after (which starts two checkouts of it).
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import { freePort } from '../src/db/embedded'

/** A running Foreman process. */
export interface ForemanProcess {
  /** `http://127.0.0.1:<port>`, for the client. */
  origin: string
  /** `http://127.0.0.1:<port>/foreman`. */
  base: string
  pid: number
  alive(): boolean
  /** Its last output, for error messages. */
  tail(): string
  /** SIGTERM (it drains first), then SIGKILL after `stopMs`. */
  stop(): Promise<void>
}

/** How long to wait for it to get ready, and to stop. */
export interface ProcessLimits {
  readyMs: number
  stopMs: number
}

/** Every process started here and not yet exited, so a driver can kill them on its way out. */
export const liveForemanProcesses = new Set<ChildProcess>()

/** Starts Foreman from the checkout at `root` on `dbUrl` under `prefix`; resolves once it is ready. */
export async function startForemanProcess(
  root: string,
  dbUrl: string,
  prefix: string,
  limits: ProcessLimits = { readyMs: 30_000, stopMs: 15_000 },
): Promise<ForemanProcess> {
  const port = await freePort()
  const env: Record<string, string | undefined> = {
    ...process.env,
    DATABASE_URL: dbUrl,
    PORT: String(port),
    FOREMAN_TABLE_PREFIX: prefix,
    // warn: at info the request log writes a line per request, which the peers do not.
    LOG_LEVEL: 'warn',
  }
  // Production logging as deployed, and no auth: the load generators send no token.
  delete env.ENV
  delete env.FOREMAN_API_TOKENS
  const child = spawn(process.execPath, [join(root, 'src/index.ts')], {
    cwd: root,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  liveForemanProcesses.add(child)
  let output = ''
  const keep = (d: Buffer) => {
    output = (output + d).slice(-4000)
  }
  child.stdout?.on('data', keep)
  child.stderr?.on('data', keep)
  const exited = new Promise<void>((ok) =>
    child.once('exit', () => {
      liveForemanProcesses.delete(child)
      ok()
    }),
  )
  const origin = `http://127.0.0.1:${port}`
  const server: ForemanProcess = {
    origin,
    base: `${origin}/foreman`,
    pid: child.pid ?? -1,
    alive: () => child.exitCode === null && child.signalCode === null,
    tail: () => output.slice(-1500),
    async stop() {
      if (!server.alive()) return
      child.kill('SIGTERM')
      // It drains requests in flight first; none should be left, so this is quick.
      const late = await Promise.race([exited.then(() => false), Bun.sleep(limits.stopMs).then(() => true)])
      if (late) {
        child.kill('SIGKILL')
        await exited
      }
    },
  }
  const deadline = Date.now() + limits.readyMs
  for (;;) {
    if (!server.alive()) throw new Error(`Foreman (${root}) exited at start: ${server.tail()}`)
    try {
      const res = await fetch(`${server.base}/readyz`, { signal: AbortSignal.timeout(2000) })
      await res.text()
      if (res.status === 200) return server
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`Foreman (${root}) not ready in ${limits.readyMs / 1000} s: ${server.tail()}`)
    }
    await Bun.sleep(50)
  }
}
