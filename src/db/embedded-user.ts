/**
 * Postgres refuses to run as root, so when Foreman is root the embedded server
 * runs as the `postgres` system user (created if missing), and every path it
 * needs must be reachable by that user. Root reaches everything, so only a
 * process running as that user can tell: the probes here run one.
 */
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'

/** The system user the embedded Postgres runs as, when that is not us. */
export interface SystemUser {
  name: string
  uid: number
  gid: number
}

function idOf(name: string, flag: '-u' | '-g'): number | undefined {
  const result = spawnSync('id', [flag, name], { encoding: 'utf8' })
  const id = Number(result.stdout?.trim())
  return result.status === 0 && Number.isInteger(id) ? id : undefined
}

/**
 * As root: the `postgres` system user, created (with its group) if missing.
 * Otherwise undefined: Postgres runs as us and reaches what we reach.
 */
export function postgresSystemUser(name = 'postgres'): SystemUser | undefined {
  if (process.getuid?.() !== 0) return undefined
  if (idOf(name, '-u') === undefined) {
    // groupadd exits 9 when the group exists (a user removed, its group kept).
    spawnSync('groupadd', ['--system', name])
    const made = spawnSync('useradd', ['--system', '--gid', name, '--no-create-home', name], { encoding: 'utf8' })
    if (made.status !== 0) {
      const why = made.error?.message ?? made.stderr?.trim()
      throw new Error(`Postgres cannot run as root and there is no "${name}" system user; creating one failed: ${why}`)
    }
  }
  const uid = idOf(name, '-u')
  const gid = idOf(name, '-g')
  if (uid === undefined || gid === undefined) throw new Error(`no uid/gid for the "${name}" system user`)
  return { name, uid, gid }
}

/** Whether `user` can enter `dir` (search permission on it and every folder above it). */
export function canEnter(user: SystemUser, dir: string): boolean {
  const probe = spawnSync('/bin/sh', ['-c', 'cd -- "$1"', 'probe', dir], { uid: user.uid, gid: user.gid })
  return probe.status === 0
}

/** Whether `user` can run the `postgres` executable in `binDir` (it prints its version). */
export function canRunPostgres(user: SystemUser, binDir: string): boolean {
  const probe = spawnSync(join(binDir, 'postgres'), ['--version'], { uid: user.uid, gid: user.gid })
  return probe.status === 0
}
