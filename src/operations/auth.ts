/**
 * Optional bearer-token auth (FOREMAN_API_TOKENS). Checked in onRequest, before a
 * body is read, so an unauthenticated request costs nothing. Every configured
 * token is compared (no early exit) in constant time over SHA-256 digests, so
 * neither the position nor the length of a near-miss leaks through timing.
 * Several tokens may be valid at once, which is how tokens are rotated.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { Elysia } from 'elysia'
import { DOCS_ASSETS } from '../docs/assets'
import type { Logger } from '../log'

/** Paths that stay open: liveness, readiness, the banner and the docs. */
const OPEN_PATHS = new Set([
  '/foreman/ping',
  '/foreman/healthz',
  '/foreman/readyz',
  '/foreman/docs',
  '/foreman/docs/json',
  ...Object.keys(DOCS_ASSETS).map((name) => `/foreman/docs/${name}`),
])
/** The console's page and assets: the page asks the operator for a token and sends it to the API. */
const OPEN_PREFIX = '/foreman/ui'

const digest = (text: string) => createHash('sha256').update(text).digest()

/** True when `presented` equals one of `digests`' tokens; always looks at all of them. */
export function tokenMatches(presented: string, digests: Buffer[]): boolean {
  const candidate = digest(presented)
  let match = false
  for (const known of digests) match = timingSafeEqual(candidate, known) || match
  return match
}

function unauthorized(message: string): Response {
  return Response.json({ error: message }, { status: 401, headers: { 'www-authenticate': 'Bearer realm="foreman"' } })
}

/**
 * The auth guard; a no-op plugin when no tokens are configured. A refusal ends the
 * request before routing, so it is logged here (the request log never sees it).
 */
export function bearerAuth(tokens: string[], log: Logger) {
  const digests = tokens.map(digest)
  const plugin = new Elysia()
  if (digests.length === 0) return plugin
  return plugin.onRequest(({ request }) => {
    const path = new URL(request.url).pathname.replace(/\/+$/, '') || '/'
    if (OPEN_PATHS.has(path) || path === OPEN_PREFIX || path.startsWith(`${OPEN_PREFIX}/`)) return
    const refuse = (message: string) => {
      log.info({ method: request.method, path, status: 401 }, 'request refused')
      return unauthorized(message)
    }
    const header = request.headers.get('authorization')
    if (!header) return refuse('authorization: a Bearer token is required')
    const match = /^Bearer\s+(\S+)\s*$/i.exec(header)
    if (!match?.[1]) return refuse('authorization: must be "Bearer <token>"')
    if (!tokenMatches(match[1], digests)) return refuse('authorization: token not accepted')
  })
}
