/** The client's transport: one fetch with a timeout, bearer auth, and retries for idempotent calls. */
import { ForemanError } from './errors'

/** How to reach Foreman. */
export interface TransportOptions {
  /** Foreman's origin (`http://localhost:7011`); a URL already ending in `/foreman` is used as is. */
  baseUrl: string
  /** Bearer token, when the server sets FOREMAN_API_TOKENS. */
  token?: string
  /** Per-request timeout in ms (default 30 000); long polls add their wait on top. */
  timeoutMs?: number
  /**
   * Retries of idempotent calls after a connection error or a 503 (default 3). A
   * 503's Retry-After is waited out when it ends within `timeoutMs` of the first
   * attempt; otherwise the 503 is thrown at once.
   */
  retries?: number
  /** First retry delay in ms, doubled each time with jitter (default 200). */
  retryDelayMs?: number
  /** The fetch to use (default the global one). */
  fetch?: typeof fetch
}

/** One request. */
export interface RequestSpec {
  method: string
  path: string
  query?: Record<string, string | number | boolean | undefined>
  body?: unknown
  /** Safe to send twice: retried on connection errors and 503. */
  idempotent: boolean
  /** Extra time on top of the timeout (a long poll's wait), in ms. */
  extraMs?: number
  /** No timeout once headers arrive (streams); the caller's signal still applies. */
  stream?: boolean
  signal?: AbortSignal
  headers?: Record<string, string>
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason)
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        reject(signal.reason)
      },
      { once: true },
    )
  })

/** `http://host:7011` or `http://host:7011/foreman` → `http://host:7011/foreman`. */
export function foremanBase(baseUrl: string): string {
  const trimmed = baseUrl.replace(/\/+$/, '')
  return trimmed.endsWith('/foreman') ? trimmed : `${trimmed}/foreman`
}

/** Sends requests to one Foreman; see `RequestSpec`. */
export class Transport {
  readonly base: string
  private readonly options: TransportOptions

  constructor(options: TransportOptions) {
    this.options = options
    this.base = foremanBase(options.baseUrl)
  }

  /**
   * Sends `spec` and hands the response (any status) to `read`, all within the timeout
   * (only the headers, for a stream); throws on a connection error once retries are spent.
   */
  async send<T>(spec: RequestSpec, read: (res: Response) => Promise<T>): Promise<{ res: Response; value: T }> {
    const retries = spec.idempotent ? (this.options.retries ?? 3) : 0
    const delay = this.options.retryDelayMs ?? 200
    // Waiting out a Retry-After stays within the time one request may take.
    const deadline = Date.now() + (this.options.timeoutMs ?? 30_000) + (spec.extraMs ?? 0)
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= retries
      let wait = delay * 2 ** attempt * (0.8 + Math.random() * 0.4)
      try {
        const answer = await this.once(spec, read)
        if (answer.res.status !== 503 || last) return answer
        // A 503 (database unavailable, draining, stream cap) says when to come back.
        wait = Math.max(wait, retryAfterMs(answer.res.headers.get('retry-after')))
        if (Date.now() + wait > deadline) return answer
        await answer.res.body?.cancel().catch(() => {})
      } catch (error) {
        // A caller's abort or our own timeout is final; a connection error may be retried.
        if (last || spec.signal?.aborted || isAbort(error)) throw error
      }
      await sleep(wait, spec.signal)
    }
  }

  /** Sends and decodes a JSON answer; non-2xx (outside `accept`) throws ForemanError. */
  async json<T>(spec: RequestSpec, accept: number[] = []): Promise<{ status: number; body: T }> {
    const { res, value: text } = await this.send(spec, (r) => r.text())
    const body = text ? parseJson(text) : null
    if (!res.ok && !accept.includes(res.status)) throw toError(res.status, body, text)
    return { status: res.status, body: body as T }
  }

  private async once<T>(spec: RequestSpec, read: (res: Response) => Promise<T>): Promise<{ res: Response; value: T }> {
    const url = new URL(`${this.base}${spec.path}`)
    for (const [key, value] of Object.entries(spec.query ?? {})) {
      if (value !== undefined) url.searchParams.set(key, String(value))
    }
    const headers: Record<string, string> = { accept: 'application/json', ...spec.headers }
    if (this.options.token) headers.authorization = `Bearer ${this.options.token}`
    if (spec.body !== undefined) headers['content-type'] = 'application/json'
    const signals: AbortSignal[] = spec.signal ? [spec.signal] : []
    const timeout = new AbortController()
    const ms = (this.options.timeoutMs ?? 30_000) + (spec.extraMs ?? 0)
    const timer = setTimeout(
      () => timeout.abort(new DOMException(`request timed out after ${ms} ms`, 'TimeoutError')),
      ms,
    )
    signals.push(timeout.signal)
    const doFetch = this.options.fetch ?? fetch
    try {
      const res = await doFetch(url, {
        method: spec.method,
        headers,
        body: spec.body === undefined ? undefined : JSON.stringify(spec.body),
        signal: AbortSignal.any(signals),
      })
      // A stream's body outlives the timeout; a JSON body is read within it.
      if (spec.stream) clearTimeout(timer)
      return { res, value: await read(res) }
    } finally {
      clearTimeout(timer)
    }
  }
}

/** A Retry-After header (seconds, or an HTTP date) in ms from now; 0 when absent or unreadable. */
export function retryAfterMs(header: string | null): number {
  if (!header) return 0
  const seconds = Number(header)
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000)
  const at = Date.parse(header)
  return Number.isNaN(at) ? 0 : Math.max(0, at - Date.now())
}

function isAbort(error: unknown): boolean {
  const name = (error as { name?: string } | null)?.name
  return name === 'AbortError' || name === 'TimeoutError'
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text)
  } catch {
    return text
  }
}

/** A ForemanError from a non-2xx answer. */
export function toError(status: number, body: unknown, text: string): ForemanError {
  const message = (body as { error?: unknown } | null)?.error
  return new ForemanError(status, typeof message === 'string' ? message : text || `HTTP ${status}`, body)
}
