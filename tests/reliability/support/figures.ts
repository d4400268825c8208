/**
 * Figures of a scenario run. In full mode they are written to
 * bench/results/reliability/<scenario>.json (docs/reliability.md is rendered
 * from them); every mode prints a one-line summary.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { resolve } from 'node:path'
import type { CheckResult } from './checker'
import { FULL, MODE } from './scale'

/** Where full-mode figures go. */
export const RESULTS_DIR = resolve(import.meta.dir, '..', '..', '..', 'bench', 'results', 'reliability')

/** What every scenario reports. */
export interface Figures {
  scenario: string
  title: string
  /** Jobs enqueued (and checked). */
  jobs: number
  runs: number
  byStatus: Record<string, number>
  /** Faults injected, by kind. */
  faults: Record<string, number>
  lost: number
  duplicated: number
  unexpected: number
  violations: number
  /** Longest recovery measured (ms), and what it measures. */
  maxRecoveryMs: number | null
  recovery: string
  fivexx: number
  /** Of the 5xx the clients saw, the 503s (database unavailable during an outage). */
  unavailable: number
  noAnswer: number
  rerun: number
  refusedCompletes: number
  durationMs: number
  /** Scenario-specific figures. */
  extra?: Record<string, unknown>
}

/** Builds figures from a check plus the scenario's own numbers. */
export function figuresOf(
  base: Pick<Figures, 'scenario' | 'title' | 'faults' | 'maxRecoveryMs' | 'recovery' | 'durationMs'> & {
    serverFivexx?: number
    extra?: Record<string, unknown>
  },
  result: CheckResult,
): Figures {
  return {
    scenario: base.scenario,
    title: base.title,
    jobs: result.jobs,
    runs: result.runs,
    byStatus: result.byStatus,
    faults: base.faults,
    lost: result.lost.length,
    duplicated: result.duplicated.length,
    unexpected: result.unexpected.length,
    violations: result.violations.length,
    maxRecoveryMs: base.maxRecoveryMs === null ? null : Math.round(base.maxRecoveryMs),
    recovery: base.recovery,
    fivexx: Math.max(result.fivexx, base.serverFivexx ?? 0),
    unavailable: result.unavailable,
    noAnswer: result.noAnswer,
    rerun: result.rerun,
    refusedCompletes: result.refusedCompletes,
    durationMs: Math.round(base.durationMs),
    extra: base.extra,
  }
}

/** Prints the figures and, in full mode, writes them with the date, mode and machine. */
export function writeFigures(figures: Figures): void {
  const cpu = cpus()
  const doc = {
    ...figures,
    mode: MODE,
    date: new Date().toISOString(),
    machine: `${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}`,
  }
  console.log(`[reliability] ${JSON.stringify(doc)}`)
  if (!FULL) return
  mkdirSync(RESULTS_DIR, { recursive: true })
  writeFileSync(resolve(RESULTS_DIR, `${figures.scenario}.json`), `${JSON.stringify(doc, null, 2)}\n`)
}
