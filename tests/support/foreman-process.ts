/**
 * `bun src/index.ts` as a child process on its own embedded Postgres, for the
 * tests of start-up, crashes and restarts; plus the small probes those tests
 * need to find (and clean up) the Postgres servers such a child leaves behind.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { Subprocess } from 'bun'

/** The source entry, as `npm start` runs it. */
export const ENTRY = resolve(import.meta.dir, '..', '..', 'src', 'index.ts')

/** The environment minus anything that selects a database or configures Foreman, plus `extra`. */
export function foremanEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && !key.startsWith('DATABASE_') && !key.startsWith('FOREMAN_')) env[key] = value
  }
  return { ...env, PORT: '0', ...extra }
}

/** A running child and everything it printed so far (stdout and stderr together). */
export interface ForemanProcess {
  child: Subprocess<'ignore', 'pipe', 'pipe'>
  output(): string
  /** Waits for `pattern` in the output; undefined when the child exits or `ms` pass first. */
  waitFor(pattern: RegExp, ms: number): Promise<RegExpMatchArray | undefined>
  /** The exit code, or 'timeout' (the child is then SIGKILLed). */
  exitWithin(ms: number): Promise<number | 'timeout'>
}

/** Starts `bun [bunArgs] <entry>` in `cwd` with `env`, reading its output as it comes. */
export function spawnForeman(
  env: Record<string, string>,
  cwd: string,
  entry = ENTRY,
  bunArgs: string[] = [],
): ForemanProcess {
  const command = [process.execPath, ...bunArgs, entry]
  const child = Bun.spawn(command, { cwd, env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' })
  let text = ''
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder()
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true })
  }
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)])
  let exited = false
  child.exited.then(() => {
    exited = true
  })
  return {
    child,
    output: () => text,
    async waitFor(pattern, ms) {
      const deadline = Date.now() + ms
      for (;;) {
        const match = text.match(pattern)
        if (match) return match
        if (exited || Date.now() > deadline) {
          await Promise.race([drained, Bun.sleep(500)])
          return text.match(pattern) ?? undefined
        }
        await Bun.sleep(50)
      }
    },
    async exitWithin(ms) {
      const code = await Promise.race([child.exited, Bun.sleep(ms).then(() => 'timeout' as const)])
      if (code === 'timeout') child.kill('SIGKILL')
      await Promise.race([drained, Bun.sleep(2000)])
      return code
    },
  }
}

/** The "listening" port of a child, or a failure that shows what it printed. */
export async function listeningBase(foreman: ForemanProcess, ms: number): Promise<string> {
  const port = (await foreman.waitFor(/listening on :(\d+)/, ms))?.[1]
  if (!port) throw new Error(`no "listening" line within ${ms} ms:\n${foreman.output()}`)
  return `http://127.0.0.1:${port}/foreman`
}

/** Whether `pid` is a live process (a zombie is not). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch {
    return false
  }
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return true
  }
}

/** The pid in `dataDir`'s postmaster.pid, if the file is there. */
export function postmasterPid(dataDir: string): number | undefined {
  const file = join(dataDir, 'postmaster.pid')
  if (!existsSync(file)) return undefined
  const pid = Number(readFileSync(file, 'utf8').split('\n')[0])
  return Number.isInteger(pid) && pid > 0 ? pid : undefined
}

/**
 * Stops the Postgres server whose pid was read from `dataDir`, if that pid is
 * still a process working in `dataDir` (a reused pid is left alone). Test clean-up.
 */
export async function stopPostmasterOf(pid: number | undefined, dataDir: string): Promise<void> {
  if (pid === undefined || !isAlive(pid)) return
  try {
    if (readlinkSync(`/proc/${pid}/cwd`) !== realpathSync(dataDir)) return
  } catch {
    return
  }
  process.kill(pid, 'SIGQUIT')
  for (let i = 0; i < 100 && isAlive(pid); i++) await Bun.sleep(100)
}

/** Waits until no process has `path` on its command line (Linux; elsewhere it returns at once). */
export async function noProcessUsing(path: string, ms = 30_000): Promise<void> {
  if (process.platform !== 'linux') return
  const using = () =>
    readdirSync('/proc').some((pid) => {
      if (!/^\d+$/.test(pid)) return false
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(path)
      } catch {
        return false
      }
    })
  for (const deadline = Date.now() + ms; using() && Date.now() < deadline; ) await Bun.sleep(100)
}

/** uid and gid of the `postgres` system user (created if missing) when we are root: Postgres then runs as it. */
export function postgresIds(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  if (spawnSync('id', ['-u', 'postgres']).status !== 0) spawnSync('useradd', ['--system', '--user-group', 'postgres'])
  const id = (flag: string) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim())
  const ids = { uid: id('-u'), gid: id('-g') }
  return Number.isInteger(ids.uid) && Number.isInteger(ids.gid) ? ids : undefined
}
