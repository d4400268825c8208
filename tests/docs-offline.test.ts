/**
 * Swagger UI works offline: /foreman/docs (with or without the trailing slash)
 * loads nothing from another host, every file it references is served here with
 * its content type and cache headers, and it all stays open when API tokens are
 * configured. A headless Chromium with every other host blocked renders the
 * operations list.
 */
import { describe, expect, test } from 'bun:test'
import { chromium } from 'playwright-core'
import { DOCS_ASSETS, SWAGGER_UI_VERSION } from '../src/docs/assets'
import { startFixture } from './support/harness'

const open = await startFixture()
const guarded = await startFixture({ apiTokens: ['docs-test-token'] })
const servers = { open: open.serve(), guarded: guarded.serve() }

/** The URLs a page references (src, href, and the spec URL in its options), resolved against the page's own URL. */
function referencedUrls(html: string, pageUrl: string): URL[] {
  const refs = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g), ...html.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]!)
  return refs.map((ref) => new URL(ref, pageUrl))
}

const CONTENT_TYPES: [RegExp, string][] = [
  [/\.js$/, 'text/javascript'],
  [/\.css$/, 'text/css'],
  [/\.png$/, 'image/png'],
  [/\/json$/, 'application/json'],
]

describe.each(Object.entries(servers))('the docs page (%s)', (label, base) => {
  for (const path of ['/docs', '/docs/']) {
    test(`${path}: no external URL; every file it references answers 200 with its content type`, async () => {
      const pageUrl = `${base}${path}`
      const res = await fetch(pageUrl)
      expect([label, res.status, res.headers.get('content-type'), res.headers.get('cache-control')]).toEqual([
        label,
        200,
        'text/html; charset=utf-8',
        'no-cache',
      ])
      const html = await res.text()
      expect(html).not.toMatch(/https?:|\/\/[a-z]/i)
      const urls = referencedUrls(html, pageUrl)
      const origin = new URL(base).origin
      expect(urls.map((u) => u.pathname).sort()).toEqual(
        [...Object.keys(DOCS_ASSETS), 'json'].map((name) => `/foreman/docs/${name}`).sort(),
      )
      for (const url of urls) {
        expect(url.origin).toBe(origin)
        const asset = await fetch(url)
        const type = CONTENT_TYPES.find(([pattern]) => pattern.test(url.pathname))?.[1]
        expect([url.pathname, asset.status, asset.headers.get('content-type')?.split(';')[0]]).toEqual([
          url.pathname,
          200,
          type,
        ])
        await asset.arrayBuffer()
      }
    })
  }
})

describe('the files', () => {
  test("are swagger-ui-dist's own, versioned by its version and cached for good under that URL", async () => {
    for (const name of Object.keys(DOCS_ASSETS)) {
      const res = await fetch(`${servers.open}/docs/${name}?v=${SWAGGER_UI_VERSION}`)
      const served = new Uint8Array(await res.arrayBuffer())
      const onDisk = await Bun.file(`node_modules/swagger-ui-dist/${name}`).bytes()
      expect([name, served.length, Bun.hash(served) === Bun.hash(onDisk)]).toEqual([name, onDisk.length, true])
      expect(res.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    }
  })

  test("another version's URL is answered but not kept", async () => {
    const res = await fetch(`${servers.open}/docs/swagger-ui.css?v=0.0.1`)
    expect([res.status, res.headers.get('cache-control')]).toEqual([200, 'no-cache'])
    await res.arrayBuffer()
  })

  test('text files go gzipped to a client that accepts it', async () => {
    const request = (encoding: string) =>
      open.app.handle(
        new Request('http://localhost/foreman/docs/swagger-ui-bundle.js', { headers: { 'accept-encoding': encoding } }),
      )
    const plain = await request('identity')
    const zipped = await request('gzip, deflate, br')
    expect([plain.headers.get('content-encoding'), zipped.headers.get('content-encoding')]).toEqual([null, 'gzip'])
    const plainBytes = new Uint8Array(await plain.arrayBuffer())
    const zippedBytes = new Uint8Array(await zipped.arrayBuffer())
    expect(zippedBytes.length).toBeLessThan(plainBytes.length / 2)
    expect(Bun.hash(Bun.gunzipSync(zippedBytes))).toBe(Bun.hash(plainBytes))
  })

  test('stay out of the OpenAPI document; the API itself still needs a token', async () => {
    const doc = (await open.call('GET', '/docs/json')).body as { paths: Record<string, unknown> }
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/foreman/docs'))).toEqual([])
    expect((await fetch(`${servers.guarded}/jobs`)).status).toBe(401)
  })
})

test('a headless browser with every other host blocked renders the operations', async () => {
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu'],
  })
  try {
    const page = await browser.newPage()
    const origin = new URL(servers.guarded).origin
    const blocked: string[] = []
    await page.route('**/*', (route) => {
      const url = route.request().url()
      if (url.startsWith(origin)) return route.continue()
      blocked.push(url)
      return route.abort()
    })
    await page.goto(`${servers.guarded}/docs/`)
    await page.locator('.opblock').first().waitFor({ timeout: 10_000 })
    const operations = await page.locator('.opblock-summary-path').allTextContents()
    expect(operations).toContain('/foreman/jobs/{id}')
    expect(blocked).toEqual([])
  } finally {
    await browser.close()
  }
})
