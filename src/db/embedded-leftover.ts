/**
 * A Postgres server left behind by a Foreman that died without stopping it (a
 * SIGKILL, the OOM killer). It keeps `postmaster.pid` in the data folder, so
 * every later start failed. We stop it rather than reuse it: a reused server
 * would keep the settings and port of the run that died, and a fresh start is
 * what a restart means; a fast shutdown takes well under a second.
 *
 * Each server we start carries `-c foreman.launcher_pid=<our pid>` on its
 * command line. While that launcher is alive and still its parent, the folder is
 * in use by another Foreman: we refuse to start instead of pulling its database
 * away. Linux only (/proc); elsewhere Postgres' own lock check reports it.
 */
import { existsSync, readFileSync, readlinkSync, realpathSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'

/** The server argument naming the Foreman process that started it. */
export const LAUNCHER_SETTING = 'foreman.launcher_pid'

function procText(pid: number, file: string): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${file}`, 'utf8')
  } catch {
    return undefined
  }
}

/** Whether `pid` is a live process (a zombie waiting to be reaped is not). */
function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
  const state = procText(pid, 'stat')?.split(') ')[1]?.[0]
  return state !== 'Z'
}

/** The parent pid of `pid`, from /proc/<pid>/stat (after the command name, which may hold spaces). */
function parentOf(pid: number): number | undefined {
  const fields = procText(pid, 'stat')?.split(') ')[1]?.split(' ')
  return fields?.[1] ? Number(fields[1]) : undefined
}

/** true: a postgres process working in `dataDir` (a postmaster chdirs there); false: not; undefined: cannot tell. */
function isServerOf(pid: number, dataDir: string): boolean | undefined {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
    return readlinkSync(`/proc/${pid}/cwd`) === realpathSync(dataDir) && /(^|\/)postgres$/.test(cmdline[0] ?? '')
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ENOENT' ? false : undefined
  }
}

function launcherOf(pid: number): number | undefined {
  const args = procText(pid, 'cmdline')?.split('\0') ?? []
  const setting = args.find((arg) => arg.startsWith(`${LAUNCHER_SETTING}=`))
  return setting ? Number(setting.slice(LAUNCHER_SETTING.length + 1)) : undefined
}

async function exitsWithin(pid: number, ms: number): Promise<boolean> {
  for (const deadline = Date.now() + ms; Date.now() < deadline; await Bun.sleep(100)) {
    if (!isAlive(pid)) return true
  }
  return !isAlive(pid)
}

/**
 * Stops the server of `dataDir` that a dead Foreman left running; refuses
 * (throws) when a live process still owns it. Removes a `postmaster.pid` whose
 * pid now belongs to an unrelated process (Postgres would refuse to start).
 */
export async function stopLeftoverServer(dataDir: string, notice: (message: string) => void): Promise<void> {
  const lockFile = join(dataDir, 'postmaster.pid')
  if (process.platform !== 'linux' || !existsSync(lockFile)) return
  const pid = Number(readFileSync(lockFile, 'utf8').split('\n')[0])
  if (!Number.isInteger(pid) || pid <= 0 || !isAlive(pid)) return // stale: Postgres handles that itself
  const ours = isServerOf(pid, dataDir)
  if (ours === undefined) return
  if (!ours) {
    notice(`removing a stale ${lockFile}: its pid ${pid} is now another process`)
    await rm(lockFile, { force: true })
    return
  }
  const parent = parentOf(pid)
  const launcher = launcherOf(pid) ?? parent // started elsewhere: its parent is its owner
  if (launcher === parent && launcher !== undefined && launcher > 1 && isAlive(launcher)) {
    throw new Error(
      `the embedded Postgres data folder ${dataDir} is in use: its server (pid ${pid}) belongs to the running ` +
        `process ${launcher}. Stop that one first, or give this one another FOREMAN_EMBEDDED_DATA_DIR.`,
    )
  }
  notice(`stopping the Postgres server (pid ${pid}) that a previous Foreman left running in ${dataDir}`)
  process.kill(pid, 'SIGINT') // fast shutdown: rolls back open transactions, writes a checkpoint
  if (await exitsWithin(pid, 20_000)) return
  process.kill(pid, 'SIGQUIT') // immediate: crash recovery at the next start
  if (await exitsWithin(pid, 10_000)) return
  throw new Error(`the Postgres server (pid ${pid}) left running in ${dataDir} did not stop`)
}
