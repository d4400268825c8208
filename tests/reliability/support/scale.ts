/**
 * How big the fault scenarios run. `FOREMAN_FAULTS=full` (npm run test:reliability)
 * is the scale issue 10 states; unset is the reduced version `npm test` runs, a
 * few seconds to a minute per scenario so the whole suite stays quick.
 */

/** True under `FOREMAN_FAULTS=full`. */
export const FULL = process.env.FOREMAN_FAULTS === 'full'

/** The mode's name, written into every figures file. */
export const MODE = FULL ? 'full' : 'reduced'

/** Picks the full or the reduced value. */
export function scale<T>(full: T, reduced: T): T {
  return FULL ? full : reduced
}

/**
 * Reaper cadence of every server the suite starts. Short, so a lost lease comes
 * back quickly; the recovery bounds of scenario 3 are stated in terms of it.
 */
export const REAPER_INTERVAL_SEC = 0.5

/** A per-test timeout: generous, the 2-core machine is shared. */
export const TEST_TIMEOUT_MS = scale(600_000, 180_000)
