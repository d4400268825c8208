/**
 * The operator console at /foreman/ui: one HTML page (any path under /ui, so deep
 * links such as /ui/jobs/<id> reach the client-side router) and its two assets,
 * named by content hash and cached for good. The page holds no data: it calls the
 * public API with the operator's token, so it is served without one.
 */
import { gzipSync } from 'bun'
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { acceptsGzip, IMMUTABLE_CACHE } from '../http/static-asset'
import { consoleAssets } from './bundle'
import type { ConsoleAssets } from './model'

const BASE = '/foreman/ui'

/** The page: the app mounts into #app; styles and script by content-hashed URL. */
function page(hash: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Foreman console</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${BASE}/assets/app-${hash}.css">
<script type="module" src="${BASE}/assets/app-${hash}.js"></script>
</head>
<body><div id="app"></div><noscript>The Foreman console needs JavaScript.</noscript></body>
</html>
`
}

const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  // The page names the current bundle, so it is revalidated every time.
  'cache-control': 'no-cache',
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
}

/** One asset, plain and gzipped (about a third of the size), compressed once per bundle. */
interface Asset {
  type: string
  plain: Uint8Array<ArrayBuffer>
  gzip: Uint8Array<ArrayBuffer>
}

const encoder = new TextEncoder()
const packed = new WeakMap<ConsoleAssets, Map<string, Asset>>()

/** The assets of `built` by file name (`app-<hash>.js`, `app-<hash>.css`). */
function assetFiles(built: ConsoleAssets): Map<string, Asset> {
  let files = packed.get(built)
  if (!files) {
    const pack = (type: string, text: string): Asset => {
      const plain = encoder.encode(text)
      return { type, plain, gzip: gzipSync(plain) }
    }
    files = new Map([
      [`app-${built.hash}.js`, pack('text/javascript; charset=utf-8', built.js)],
      [`app-${built.hash}.css`, pack('text/css; charset=utf-8', built.css)],
    ])
    packed.set(built, files)
  }
  return files
}

function serveAsset(asset: Asset, request: Request): Response {
  const gzip = acceptsGzip(request)
  const headers: Record<string, string> = {
    'content-type': asset.type,
    // The name changes with the content: a browser never needs to ask again.
    'cache-control': IMMUTABLE_CACHE,
    'x-content-type-options': 'nosniff',
    vary: 'accept-encoding',
  }
  if (gzip) headers['content-encoding'] = 'gzip'
  return new Response(gzip ? asset.gzip : asset.plain, { headers })
}

// Not part of the API: kept out of the OpenAPI document.
const detail = (summary: string) => ({ hide: true, tags: ['console'], summary, description: summary })

/** GET /ui, /ui/*, /ui/assets/:file. With ENV=DEV the bundle is rebuilt at each page load. */
export const consoleRoutes = (deps: Deps) => {
  const fresh = deps.config.env === 'DEV'
  const servePage = async () => new Response(page((await consoleAssets(fresh)).hash), { headers: PAGE_HEADERS })
  return new Elysia()
    .get('/ui', servePage, { detail: detail('The operator console (HTML)') })
    .get('/ui/*', servePage, { detail: detail('The operator console at a deep link (HTML)') })
    .get(
      '/ui/assets/:file',
      async ({ params, request, set }) => {
        const asset = assetFiles(await consoleAssets()).get(params.file)
        if (asset) return serveAsset(asset, request)
        // An old page asking for a bundle this process no longer has.
        set.status = 404
        return { error: `console asset ${params.file} not found (reload the page)` }
      },
      {
        params: t.Object({ file: t.String({ maxLength: 100 }) }),
        detail: detail('A console asset, named by its content hash'),
      },
    )
}
