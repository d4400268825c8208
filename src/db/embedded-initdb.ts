/** Creates a new embedded cluster with `initdb`, its superuser password random and kept in the data folder. */
import { chown, mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { PASSWORD_FILE, writePasswordFile } from './embedded-password'
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

/** Runs `initdb` into `dataDir` (missing or empty), then writes the password file there. */
export async function initCluster(options: InitOptions): Promise<void> {
  const { dataDir, user } = options
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  if (user) await chown(dataDir, user.uid, user.gid)
  // initdb reads the password from a file, and wants the data folder empty: the
  // file goes in a private temporary folder, readable only by whoever runs initdb.
  const scratch = await mkdtemp(join(tmpdir(), 'foreman-initdb-'))
  try {
    if (user) await chown(scratch, user.uid, user.gid)
    const pwfile = join(scratch, 'password')
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
    const outcome = await new Promise<string | undefined>((resolve) => {
      child.once('error', (error) => resolve(`could not run ${command}: ${error.message}`))
      child.once('close', (code, signal) =>
        resolve(code === 0 ? undefined : `initdb failed (${signal ?? `code ${code}`}): ${failureReason(lines)}`),
      )
    })
    if (outcome) throw new Error(outcome)
  } finally {
    await rm(scratch, { recursive: true, force: true })
  }
  await writePasswordFile(join(dataDir, PASSWORD_FILE), options.password, user)
}
