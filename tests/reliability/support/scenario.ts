/**
 * What every scenario does around its faults: a table prefix of its own on the
 * test database, waiting until every job is terminal, the final check (with
 * the history of the first offending jobs in the failure message and in
 * /work/findings-faults.md-ready form), and dropping the tables afterwards.
 */
import { appendFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { createSql } from '../../../src/db/client'
import { dropTables } from '../../../src/db/migrate'
import { tablesFor } from '../../../src/db/tables'
import { type CheckOptions, type CheckResult, check, history } from './checker'
import { countUnfinished, type DbState, readState } from './db-state'
import { waitFor } from './processes'
import type { Recorder } from './record'
import { MODE } from './scale'

/** The preload's database (embedded, or DATABASE_URL). */
export function testDatabaseUrl(): string {
  const url = process.env.DATABASE_URL
  if (!url) throw new Error('DATABASE_URL is not set: the test preload did not run')
  return url
}

/** A fresh table prefix for `scenario` (lower case: it becomes part of identifiers). */
export function prefixFor(scenario: string): string {
  return `rel_${scenario}_${process.pid}_${Date.now().toString(36)}_`
}

/** Waits until no job of `prefix` is pending or active; answers whether that happened within `timeoutMs`. */
export function drain(url: string, prefix: string, timeoutMs: number): Promise<boolean> {
  return waitFor(async () => (await countUnfinished(url, prefix)) === 0, timeoutMs, 500)
}

/** Where a failing run leaves the histories of its offending jobs (outside the repository). */
const VIOLATIONS_LOG = resolve(process.env.FOREMAN_FAULTS_LOG ?? '/tmp/foreman-faults-violations.log')

/** Reads the final state and checks it; violations are logged with the jobs' histories. */
export async function verify(
  scenario: string,
  recorder: Recorder,
  url: string,
  prefix: string,
  options: CheckOptions = {},
): Promise<{ result: CheckResult; state: DbState }> {
  const state = await readState(url, prefix)
  const result = check(recorder, state, options)
  if (result.violations.length > 0) {
    const jobs = [...new Set(result.violations.map((line) => line.split(':')[0]!))].slice(0, 5)
    const report = [
      `== ${new Date().toISOString()} scenario ${scenario} (${MODE}): ${result.violations.length} violations`,
      ...result.violations.slice(0, 50),
      ...jobs.map((id) => history(recorder, state, id)),
    ].join('\n')
    console.error(report)
    appendFileSync(VIOLATIONS_LOG, `${report}\n`)
  }
  return { result, state }
}

/** Appends the histories of `jobs` to the violations log under `title` (a finding's evidence, not a failure). */
export function logHistories(title: string, recorder: Recorder, state: DbState, jobs: string[]): void {
  const report = [
    `== ${new Date().toISOString()} ${title} (${MODE})`,
    ...jobs.map((id) => history(recorder, state, id)),
  ]
  console.error(report.join('\n'))
  appendFileSync(VIOLATIONS_LOG, `${report.join('\n')}\n`)
}

/** Drops the tables of `prefix`. */
export async function dropPrefix(url: string, prefix: string): Promise<void> {
  const sql = createSql({ url, max: 1 })
  try {
    await dropTables(sql, tablesFor(prefix))
  } finally {
    await sql.end({ timeout: 5 })
  }
}

/** Counts of records by a key, for the faults-by-kind figures. */
export function countBy<T>(items: T[], key: (item: T) => string | null): Record<string, number> {
  const counts: Record<string, number> = {}
  for (const item of items) {
    const k = key(item)
    if (k !== null) counts[k] = (counts[k] ?? 0) + 1
  }
  return counts
}
