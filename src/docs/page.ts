/**
 * The Swagger UI page at /foreman/docs. @elysiajs/swagger 1.3.1 hard-codes
 * unpkg.com for swagger-ui-bundle.js in its page (only the stylesheet has an
 * option), so the page is ours and loads everything from this process.
 *
 * Its URLs are relative, so a reverse proxy may mount Foreman under any prefix.
 * A relative URL resolves against the page's own URL, which differs with and
 * without the trailing slash (/foreman/docs/x vs /foreman/x), hence two renderings.
 */
import { SWAGGER_UI_VERSION } from './assets'

/** The page's URLs are relative to this: `docs/` from /foreman/docs, nothing from /foreman/docs/. */
export type DocsBase = '' | 'docs/'

/** The HTML of the docs page, for a page whose URL is `base`'s (see DocsBase). */
export function renderDocsPage(base: DocsBase): string {
  const asset = (name: string) => `${base}${name}?v=${SWAGGER_UI_VERSION}`
  const options = {
    url: `${base}json`,
    dom_id: '#swagger-ui',
    // Swagger UI would send the spec to validator.swagger.io for its badge.
    validatorUrl: null,
    deepLinking: true,
  }
  return `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <meta name="viewport" content="width=device-width, initial-scale=1" />
  <title>Foreman API</title>
  <link rel="icon" type="image/png" href="${asset('favicon-32x32.png')}" sizes="32x32" />
  <link rel="icon" type="image/png" href="${asset('favicon-16x16.png')}" sizes="16x16" />
  <link rel="stylesheet" href="${asset('swagger-ui.css')}" />
  <style>
    @media (prefers-color-scheme: dark) {
      body { background-color: #222; }
      .swagger-ui { filter: invert(92%) hue-rotate(180deg); }
      .swagger-ui .microlight { filter: invert(100%) hue-rotate(180deg); }
    }
  </style>
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="${asset('swagger-ui-bundle.js')}"></script>
  <script>
    window.onload = () => { window.ui = SwaggerUIBundle(${JSON.stringify(options)}) }
  </script>
</body>
</html>
`
}
