/**
 * Swagger UI's files from the swagger-ui-dist package, served by the process so
 * /foreman/docs works on a network that cannot reach a CDN. Imported as files,
 * which `bun build --compile` embeds in the binary (Bun.file reads them from
 * there); under `bun src/index.ts` they are the files in node_modules.
 */
import favicon16 from 'swagger-ui-dist/favicon-16x16.png' with { type: 'file' }
import favicon32 from 'swagger-ui-dist/favicon-32x32.png' with { type: 'file' }
import swaggerPackage from 'swagger-ui-dist/package.json'
import stylesheet from 'swagger-ui-dist/swagger-ui.css' with { type: 'file' }
import bundle from 'swagger-ui-dist/swagger-ui-bundle.js' with { type: 'file' }

/** The swagger-ui-dist version: asset URLs carry it, so a new version is a new URL and caches can keep the old forever. */
export const SWAGGER_UI_VERSION: string = swaggerPackage.version

/** One file the docs page loads: where it is (a path on disk or in the binary) and what it is. */
export interface DocsAsset {
  path: string
  contentType: string
}

/** The files the page loads, by the name they have under /foreman/docs/. */
export const DOCS_ASSETS: Record<string, DocsAsset> = {
  'swagger-ui-bundle.js': { path: bundle, contentType: 'text/javascript; charset=utf-8' },
  'swagger-ui.css': { path: stylesheet, contentType: 'text/css; charset=utf-8' },
  'favicon-32x32.png': { path: favicon32, contentType: 'image/png' },
  'favicon-16x16.png': { path: favicon16, contentType: 'image/png' },
}
