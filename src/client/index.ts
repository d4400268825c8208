/**
 * Foreman's TypeScript client and Worker, built only on `fetch` (Bun, Node 20+).
 * @example
 * import { ForemanClient, Worker } from 'foreman/client'
 * const foreman = new ForemanClient({ baseUrl: 'http://localhost:7011' })
 */
export * from './client'
export { ForemanError, PermanentError, RetryError } from './errors'
export { foremanBase, type TransportOptions } from './http'
export { parseSse, type SseMessage } from './sse'
export { type Handler, type JobContext, SHUTDOWN_MESSAGE, Worker, type WorkerOptions } from './worker'
