/** Errors the client throws and the ones a Worker handler throws to steer the retry. */

/** A non-2xx answer from Foreman: `status` is the HTTP status, `message` the server's `error`. */
export class ForemanError extends Error {
  override name = 'ForemanError'
  constructor(
    /** HTTP status of the answer. */
    readonly status: number,
    message: string,
    /** The whole JSON body of the answer (it may carry more than `error`, e.g. `field`). */
    readonly body: unknown = null,
  ) {
    super(message)
  }
}

/**
 * Thrown from a handler: fail the job at once, whatever attempts remain.
 * @example throw new PermanentError('no such user')
 */
export class PermanentError extends Error {
  override name = 'PermanentError'
}

/**
 * Thrown from a handler: fail retryably after `backoffSeconds` (0 = retry at once)
 * instead of the server's default exponential backoff.
 * @example throw new RetryError('rate limited', 30)
 */
export class RetryError extends Error {
  override name = 'RetryError'
  constructor(
    message: string,
    /** Delay before the retry, in seconds. */
    readonly backoffSeconds: number,
  ) {
    super(message)
  }
}
