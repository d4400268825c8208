/**
 * GET /docs (and /docs/): Swagger UI with its files served from here (see
 * page.ts); GET /docs/<asset>. The spec itself, /docs/json, stays with
 * @elysiajs/swagger. Hidden from the spec, as the plugin's own page was.
 */
import { Elysia } from 'elysia'
import { acceptsGzip, IMMUTABLE_CACHE } from '../http/static-asset'
import { DOCS_ASSETS, type DocsAsset, SWAGGER_UI_VERSION } from './assets'
import { renderDocsPage } from './page'

const pages = { slash: renderDocsPage(''), bare: renderDocsPage('docs/') }

/** Gzipped copies, made on first request: the bundle is 1.7 MB as is, about a third of that gzipped. */
const gzipped = new Map<string, Promise<ArrayBuffer>>()

async function serveAsset(name: string, asset: DocsAsset, request: Request): Promise<Response> {
  const version = new URL(request.url).searchParams.get('v')
  const headers: Record<string, string> = {
    'content-type': asset.contentType,
    // The URL names the version, so new files get a new URL; another version's
    // URL gets these bytes too, but must not keep them.
    'cache-control': version === SWAGGER_UI_VERSION ? IMMUTABLE_CACHE : 'no-cache',
    vary: 'accept-encoding',
  }
  const file = Bun.file(asset.path)
  if (!asset.contentType.startsWith('text/') || !acceptsGzip(request)) {
    return new Response(file, { headers })
  }
  let body = gzipped.get(name)
  if (!body) {
    body = file.bytes().then((bytes) => Bun.gzipSync(bytes).slice().buffer)
    gzipped.set(name, body)
  }
  return new Response(await body, { headers: { ...headers, 'content-encoding': 'gzip' } })
}

/**
 * The docs routes. Use after the swagger plugin: a route with the same method and
 * path replaces the earlier one (Elysia 1.4), so this page replaces the plugin's.
 */
export function docsRoutes() {
  const app = new Elysia({ name: 'docs' }).get(
    '/docs',
    ({ request }) =>
      new Response(new URL(request.url).pathname.endsWith('/') ? pages.slash : pages.bare, {
        headers: { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-cache' },
      }),
    { detail: { hide: true } },
  )
  for (const [name, asset] of Object.entries(DOCS_ASSETS)) {
    app.get(`/docs/${name}`, ({ request }) => serveAsset(name, asset, request), { detail: { hide: true } })
  }
  return app
}
