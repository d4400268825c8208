/** Creates a new embedded cluster with `initdb`, its superuser password random and kept in the data folder. */
import { chown, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { keepPendingPassword, pendingPasswordFile, writePasswordFile } from './embedded-password'
import { eachLine, failureReason, spawnAs } from './embedded-postmaster'
import type { SystemUser } from './embedded-user'

/** What `initdb` needs. */
export interface InitOptions {
  binDir: string
  dataDir: string
  password: string
  user?: SystemUser
  /** Skip initdb's fsync (tests). */
  noSync?: boolean
  onLog: (line: string) => void
}

/**
 * Runs `initdb` into `dataDir` (missing or empty). The password file is written
 * first, beside the folder (initdb reads it from there), and moved in after: if
 * Foreman dies meanwhile, initdb still finishes and the next start finds it.
 */
export async function initCluster(options: InitOptions): Promise<void> {
  const { dataDir, user } = options
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  if (user) await chown(dataDir, user.uid, user.gid)
  const pwfile = pendingPasswordFile(dataDir)
  await writePasswordFile(pwfile, options.password, user)
  const args = [
    `--pgdata=${dataDir}`,
    '--username=postgres',
    '--auth=scram-sha-256',
    `--pwfile=${pwfile}`,
    '--lc-messages=C',
    ...(options.noSync ? ['--no-sync'] : []),
  ]
  const command = join(options.binDir, 'initdb')
  const lines: string[] = []
  const child = spawnAs(command, args, user)
  eachLine(child.stdout, options.onLog)
  eachLine(child.stderr, (line) => {
    lines.push(line)
    options.onLog(line)
  })
  const failure = await new Promise<string | undefined>((resolve) => {
    child.once('error', (error) => resolve(`could not run ${command}: ${error.message}`))
    child.once('close', (code, signal) =>
      resolve(code === 0 ? undefined : `initdb failed (${signal ?? `code ${code}`}): ${failureReason(lines)}`),
    )
  })
  if (failure) throw new Error(failure)
  await keepPendingPassword(dataDir)
}
