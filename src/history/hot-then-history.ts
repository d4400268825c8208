/**
 * Finding a job for an action when it may be hot or in history. The history
 * sweep moves a finished job in one statement and a retry brings it back in
 * one, so each of the action's statements sees the job in one place or the
 * other; but it can move between two of them.
 */

/**
 * Runs `hot` (the action's statement on the hot table); when it finds no job,
 * `history`; when that finds none either, `hot` once more. Why each step:
 * `hot` locks the row, so when the sweep is moving the job at that moment it
 * waits for the move and finds the row gone; `history`, a later statement,
 * then sees the moved row. A retry that restored the job between the two (it
 * was in history for `hot`, back in the hot table for `history`) is what the
 * second `hot` finds. Answers null only when all three found nothing.
 */
export async function hotThenHistory<T>(
  hot: () => Promise<T | null>,
  history: () => Promise<T | null>,
): Promise<T | null> {
  return (await hot()) ?? (await history()) ?? (await hot())
}
