/**
 * What the process's own static files (the console's bundle, Swagger UI's files)
 * share when served: caching for URLs that name their content, and gzip when the
 * client takes it.
 */

/** A year, never revalidated: for URLs that change whenever the bytes do (a content hash, a version). */
export const IMMUTABLE_CACHE = 'public, max-age=31536000, immutable'

/** True when the request accepts a gzipped body. */
export function acceptsGzip(request: Request): boolean {
  return /\bgzip\b/.test(request.headers.get('accept-encoding') ?? '')
}
