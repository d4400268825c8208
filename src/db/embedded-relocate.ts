/**
 * As root, the embedded Postgres runs as the `postgres` system user, which
 * cannot enter a mode-700 folder such as /root: any checkout there (the usual
 * container and VM case) holds both the default data folder and the server
 * executables out of its reach, and `initdb` failed with EACCES. Then the
 * cluster and a copy of the executables live in a root-owned, world-traversable
 * folder instead (default /var/lib/foreman), under a hash of where they would
 * have been, so each checkout and data folder keeps its own:
 *
 *   <base>/clusters/<hash of the data folder>          the cluster (owned by postgres)
 *   <base>/clusters/<hash>.origin                      the data folder it stands for
 *   <base>/postgres/<hash of the package folder>/bin   the copy of the executables
 *
 * Nothing moves when the paths are reachable, or when we are not root.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { chmod, cp, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { canEnter, canRunPostgres, type SystemUser } from './embedded-user'

/** Where relocated clusters and executables go unless configured otherwise. */
export const DEFAULT_RELOCATION_DIR = '/var/lib/foreman'

function hashOf(path: string): string {
  return createHash('sha256').update(path).digest('hex').slice(0, 16)
}

/**
 * Creates `base/sub` (root-owned, mode 755) or checks that it is root's alone:
 * what it holds is run by, and holds the data of, the `postgres` user, who must
 * be able to enter it.
 */
async function sharedFolder(base: string, sub: string, user: SystemUser): Promise<void> {
  for (const dir of [base, join(base, sub)]) {
    await mkdir(dir, { recursive: true, mode: 0o755 })
    const info = await stat(dir)
    if (info.uid !== 0 || (info.mode & 0o022) !== 0) {
      throw new Error(`${dir} must be owned by root and writable only by root (it holds embedded Postgres data)`)
    }
    // mkdir's mode passes through the umask; the postgres user must get through.
    if ((info.mode & 0o005) !== 0o005) await chmod(dir, info.mode | 0o755)
  }
  if (!canEnter(user, join(base, sub))) {
    throw new Error(
      `the "${user.name}" system user cannot enter ${base}: choose another FOREMAN_EMBEDDED_RELOCATION_DIR`,
    )
  }
}

/** Where the cluster of `dataDir` lives, and the data folder it was moved from, if it was. */
export interface ClusterPlace {
  dataDir: string
  movedFrom?: string
}

/**
 * Keeps the cluster in `dataDir` when `user` can reach it, else moves it to the
 * relocation folder. A cluster once placed there stays there (even if `dataDir`
 * becomes reachable later), and an existing cluster is never silently replaced.
 */
export async function placeCluster(dataDir: string, user: SystemUser | undefined, base: string): Promise<ClusterPlace> {
  if (!user) return { dataDir }
  if (existsSync(join(dataDir, 'PG_VERSION'))) {
    if (canEnter(user, dataDir)) return { dataDir }
    throw new Error(
      `the Postgres cluster in ${dataDir} cannot be reached by the "${user.name}" system user that runs it; ` +
        'make the folders above it traversable (chmod o+x) or move it',
    )
  }
  const moved = join(base, 'clusters', hashOf(dataDir))
  if (existsSync(join(moved, 'PG_VERSION'))) return { dataDir: moved, movedFrom: dataDir }
  await mkdir(dirname(dataDir), { recursive: true })
  if (canEnter(user, dirname(dataDir))) return { dataDir }
  await sharedFolder(base, 'clusters', user)
  await writeFile(`${moved}.origin`, `${dataDir}\n`)
  return { dataDir: moved, movedFrom: dataDir }
}

/** Where the executables are run from, and the folder they were copied from, if they were. */
export interface BinariesPlace {
  binDir: string
  copiedFrom?: string
}

/** Gives read (and, for folders and executables, search) permission to everyone. */
async function openUp(dir: string): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isSymbolicLink()) continue
    const path = join(entry.parentPath, entry.name)
    const { mode } = await stat(path)
    await chmod(path, mode | (entry.isDirectory() || mode & 0o100 ? 0o555 : 0o444))
  }
  await chmod(dir, 0o755)
}

/**
 * Runs the executables from `binDir` when `user` can, else from a copy of the
 * package's `native` folder (bin, lib, share: they find each other by relative
 * paths) in the relocation folder, made once and renewed when the source changes.
 */
export async function placeBinaries(
  binDir: string,
  user: SystemUser | undefined,
  base: string,
): Promise<BinariesPlace> {
  if (!user || canRunPostgres(user, binDir)) return { binDir }
  const native = dirname(binDir)
  const source = await stat(join(binDir, 'postgres'))
  const stamp = `${native}\n${source.size}:${source.mtimeMs}\n`
  const copy = join(base, 'postgres', hashOf(native))
  const current = await readFile(join(copy, '.origin'), 'utf8').catch(() => '')
  if (current === stamp) return { binDir: join(copy, 'bin'), copiedFrom: binDir }

  await sharedFolder(base, 'postgres', user)
  // Copied aside and renamed into place, so a half-made copy is never used.
  const staging = `${copy}.partial-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  await cp(native, staging, { recursive: true, verbatimSymlinks: true })
  await openUp(staging)
  await writeFile(join(staging, '.origin'), stamp)
  await rm(copy, { recursive: true, force: true })
  await rename(staging, copy).catch(async (error) => {
    // Another Foreman made the same copy at the same moment: use theirs.
    await rm(staging, { recursive: true, force: true })
    if ((await readFile(join(copy, '.origin'), 'utf8').catch(() => '')) !== stamp) throw error
  })
  if (!canRunPostgres(user, join(copy, 'bin'))) {
    throw new Error(`the "${user.name}" system user cannot run the Postgres executables copied to ${copy}`)
  }
  return { binDir: join(copy, 'bin'), copiedFrom: binDir }
}
