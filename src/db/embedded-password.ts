/**
 * The superuser password of the embedded cluster. It used to be the fixed word
 * `password`, so any local user could log in over loopback as superuser (and run
 * programs through `COPY ... TO PROGRAM`). Now each cluster gets a random one
 * at `initdb`, kept in `foreman-password` inside its data folder: mode 0600,
 * owned like the rest of the folder (by the `postgres` user when we are root:
 * root still reads it, and Postgres only checks the folder's own mode).
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, chown, copyFile, readFile, rename, rm, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import postgres from 'postgres'
import type { SystemUser } from './embedded-user'

/** The password file's name inside the data folder. */
export const PASSWORD_FILE = 'foreman-password'

/** What clusters made before the password file were given. */
const OLD_FIXED_PASSWORD = 'password'

/** 32 characters of [A-Za-z0-9_-] (192 bits): safe in a URL and in an SQL literal. */
export function newPassword(): string {
  return randomBytes(24).toString('base64url')
}

/** Writes `password` to `path`, mode 0600, owned by `user` when given. */
export async function writePasswordFile(path: string, password: string, user?: SystemUser): Promise<void> {
  await rm(path, { force: true })
  await writeFile(path, `${password}\n`, { mode: 0o600, flag: 'wx' })
  await chmod(path, 0o600)
  if (user) await chown(path, user.uid, user.gid)
}

async function readPasswordFile(path: string): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch(() => undefined)
  return text?.trim() || undefined
}

/**
 * Where a new cluster's password waits while `initdb` runs: beside the data
 * folder, since initdb wants that folder empty.
 */
export function pendingPasswordFile(dataDir: string): string {
  return `${dataDir}.${PASSWORD_FILE}`
}

/** Moves the pending password file into the (now initialised) data folder. */
export async function keepPendingPassword(dataDir: string): Promise<void> {
  const target = join(dataDir, PASSWORD_FILE)
  await rename(pendingPasswordFile(dataDir), target).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'EXDEV') throw error // the data folder is a mount point
    await copyFile(pendingPasswordFile(dataDir), target)
    await rm(pendingPasswordFile(dataDir))
  })
}

/**
 * The cluster's password; undefined for a cluster made before the password
 * file. A password still pending (Foreman died while initdb ran) is moved in.
 */
export async function readPassword(dataDir: string): Promise<string | undefined> {
  const password = await readPasswordFile(join(dataDir, PASSWORD_FILE))
  if (password || !existsSync(pendingPasswordFile(dataDir))) return password
  await keepPendingPassword(dataDir)
  return readPasswordFile(join(dataDir, PASSWORD_FILE))
}

async function tryLogIn(port: number, password: string, action: string): Promise<boolean> {
  const sql = postgres({
    host: '127.0.0.1',
    port,
    user: 'postgres',
    database: 'postgres',
    password,
    max: 1,
    connect_timeout: 10,
    onnotice: () => {},
  })
  try {
    await sql.unsafe(action)
    return true
  } catch (error) {
    if ((error as { code?: string }).code === '28P01') return false // invalid_password
    throw error
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/**
 * Moves a running cluster made with the old fixed password to a random one, and
 * answers it. The new password is written (as `foreman-password.new`) before
 * the role changes and renamed into place after, so a crash at any step leaves
 * a password that the next start can log in with.
 */
export async function replaceOldPassword(dataDir: string, port: number, user?: SystemUser): Promise<string> {
  const pending = join(dataDir, `${PASSWORD_FILE}.new`)
  let password = await readPasswordFile(pending)
  if (!password) {
    password = newPassword()
    await writePasswordFile(pending, password, user)
  }
  // Only [A-Za-z0-9_-]: nothing to escape in the literal (ALTER ROLE takes no parameters).
  const changed = await tryLogIn(port, OLD_FIXED_PASSWORD, `alter role current_user password '${password}'`)
  if (!changed && !(await tryLogIn(port, password, 'select 1'))) {
    throw new Error(
      `the embedded cluster in ${dataDir} has no ${PASSWORD_FILE} and refuses the old default password; ` +
        `write its superuser password into ${join(dataDir, PASSWORD_FILE)} (mode 0600)`,
    )
  }
  await rename(pending, join(dataDir, PASSWORD_FILE))
  return password
}
