/**
 * The per-process cap on open event streams (FOREMAN_MAX_STREAMS). Every stream
 * holds a subscription, timers and up to its byte budget of unread events, so the
 * cap times the budget bounds what streams can cost a process.
 */
import { ForemanError } from '../errors'

/** Clients refused at the cap are told to come back after this many seconds. */
export const STREAMS_RETRY_AFTER_SEC = 5

/** Every stream slot is taken: a 503 with Retry-After. */
export class StreamsFull extends ForemanError {
  override name = 'StreamsFull'
  constructor(max: number) {
    super(
      503,
      `too many open event streams (at most ${max} per process); retry later`,
      {},
      { 'retry-after': String(STREAMS_RETRY_AFTER_SEC) },
    )
  }
}

/** Counts the open streams of a process and refuses one beyond the cap. */
export class StreamSlots {
  private taken = 0

  /** Streams open now. */
  get open(): number {
    return this.taken
  }

  /**
   * Takes a slot when fewer than `max` are taken; answers the function that gives
   * it back (only the first call counts), or throws StreamsFull.
   * @example const release = slots.take(1000); try { … } finally { release() }
   */
  take(max: number): () => void {
    if (this.taken >= max) throw new StreamsFull(max)
    this.taken++
    let held = true
    return () => {
      if (!held) return
      held = false
      this.taken--
    }
  }
}
