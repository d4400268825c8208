/** Small helpers of the Worker: a stoppable sleep and the fail body for a thrown error. */
import type { FailBody } from './client'
import { PermanentError, RetryError } from './errors'

/** What the Worker fails a run with. */
export type Failure = Omit<FailBody, 'worker_id'> & { error: string; retryable: boolean }

/** Resolves after `ms`, or at once when `signal` aborts (stop() must not wait out a backoff). */
export const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(timer)
        resolve()
      },
      { once: true },
    )
  })

/** The fail body for what a handler threw. */
export function failure(error: unknown, cancelled: boolean): Failure {
  const message = error instanceof Error ? error.message || error.name : String(error)
  if (cancelled) return { error: message, retryable: false }
  if (error instanceof PermanentError) return { error: message, retryable: false }
  if (error instanceof RetryError) return { error: message, retryable: true, backoff_seconds: error.backoffSeconds }
  return { error: message, retryable: true }
}
