/**
 * What a before-and-after run was asked for (its arguments) and what follows from
 * them: the jobs per scenario and the time limits of every phase.
 */
import { resolve } from 'node:path'

/** The checkout this run is in: "after", and where the results go. */
export const repo = resolve(import.meta.dir, '../..')

const argv = process.argv.slice(2)
/** `--quick`: a tenth of the jobs, results to before-after-quick.*, to check the harness. */
export const quick = argv.includes('--quick')
/** `--rounds 3` or `--rounds=3`. */
const roundsArg = (() => {
  const eq = argv.find((a) => a.startsWith('--rounds='))
  if (eq) return eq.slice('--rounds='.length)
  const at = argv.indexOf('--rounds')
  return at >= 0 ? argv[at + 1] : undefined
})()
/** Rounds of before and after, each version once per round. */
export const rounds = Number(roundsArg ?? 3)
if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds wants a whole number ≥ 1, got ${roundsArg}`)
const positional = argv.filter((a, i) => !a.startsWith('--') && argv[i - 1] !== '--rounds')
/** The baseline's git ref, the first positional argument. */
export const baselineRef = positional[0] ?? '96b5da7'

/** Jobs per scenario; `--quick` takes a tenth. Warm-ups are a tenth of each, untimed. */
export interface Sizes {
  /** Loops (or Workers) in flight at once. */
  concurrency: number
  enqueue: number
  processSingle: number
  processBatched: number
  /** Jobs per batched claim and ack. */
  batch: number
}

const FULL: Sizes = { concurrency: 16, enqueue: 4000, processSingle: 4000, processBatched: 20_000, batch: 50 }
/** The sizes of this run. */
export const sizes: Sizes = quick
  ? {
      ...FULL,
      enqueue: FULL.enqueue / 10,
      processSingle: FULL.processSingle / 10,
      processBatched: FULL.processBatched / 10,
    }
  : FULL
/** The untimed warm-up before `jobs` timed ones. */
export const warmupOf = (jobs: number) => Math.round(jobs / 10)

/**
 * Limits so that no phase can hang the run: a timed scenario (warm-up included),
 * an untimed fill, a server's start and stop. A normal full run takes a tenth of
 * these; a phase that overruns is recorded as an error and the run goes on.
 */
export const LIMITS = {
  readyMs: 30_000,
  fillMs: quick ? 60_000 : 180_000,
  scenarioMs: quick ? 60_000 : 180_000,
  stopMs: 30_000,
  statementMs: 120_000,
}
