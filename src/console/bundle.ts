/**
 * The console's browser bundle: src/console/ui/main.tsx (Preact) and its one
 * stylesheet, built by Bun's bundler into a JS and a CSS text named by a content
 * hash. Running from source (`npm start`) it is built in this process at the first
 * request (about 10-30 ms); `npm run build` builds it once and bakes it into the
 * binary (scripts/build.ts swaps src/console/prebuilt.ts for the result), where
 * the sources are not on disk.
 */
import { resolve } from 'node:path'
import type { ConsoleAssets } from './model'
import { prebuilt } from './prebuilt'

const SCRIPT = resolve(import.meta.dir, 'ui', 'main.tsx')
const STYLES = resolve(import.meta.dir, 'ui', 'style.css')

/** Bundles the console with Bun's bundler (minified, for browsers). Throws with the bundler's messages. */
export async function buildConsoleAssets(): Promise<ConsoleAssets> {
  const result = await Bun.build({
    entrypoints: [SCRIPT, STYLES],
    target: 'browser',
    format: 'esm',
    minify: true,
    jsx: { runtime: 'automatic', importSource: 'preact' },
    define: { 'process.env.NODE_ENV': '"production"' },
  }).catch((error: unknown) => ({ success: false as const, outputs: [], logs: [error] }))
  if (!result.success) throw new Error(`console bundle failed: ${result.logs.map(String).join('\n')}`)
  const js = result.outputs.find((o) => o.path.endsWith('.js'))
  const css = result.outputs.find((o) => o.path.endsWith('.css'))
  if (!js || !css) throw new Error('console bundle failed: no script or no stylesheet in the output')
  const [jsText, cssText] = await Promise.all([js.text(), css.text()])
  const hash = Bun.hash(`${jsText}\0${cssText}`).toString(36)
  return { js: jsText, css: cssText, hash }
}

let built: Promise<ConsoleAssets> | undefined

/**
 * The console's assets: the ones baked into the binary, else built once per
 * process (`fresh` rebuilds, for ENV=DEV, so an edit shows on reload).
 */
export function consoleAssets(fresh = false): Promise<ConsoleAssets> {
  if (prebuilt) return Promise.resolve(prebuilt)
  if (!built || fresh) {
    const attempt = buildConsoleAssets()
    built = attempt
    // A failed build is retried by the next request rather than cached.
    attempt.catch(() => {
      if (built === attempt) built = undefined
    })
  }
  return built
}
