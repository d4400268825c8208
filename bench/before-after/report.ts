/**
 * The results of a run: medians and ranges over the rounds, after ÷ before, and
 * the JSON and Markdown written to bench/results/before-after-*.
 */
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus, totalmem } from 'node:os'
import { join } from 'node:path'
import { baselineRef, quick, repo, rounds, sizes } from './options'
import { round, type Sample, SCENARIOS, type ScenarioId, type Version } from './sample'

/** A median with its range over the rounds. */
interface Stat {
  median: number
  min: number
  max: number
  n: number
}

function stat(values: number[]): Stat | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  const median = sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
  return { median: round(median, 1), min: sorted[0]!, max: sorted[sorted.length - 1]!, n: values.length }
}

const METRICS = [
  { key: 'jobs_per_sec', label: 'jobs/s', better: 'higher' },
  { key: 'server_cpu_us_per_job', label: 'server CPU µs/job', better: 'lower' },
  { key: 'pg_cpu_us_per_job', label: 'Postgres CPU µs/job', better: 'lower' },
  { key: 'client_cpu_us_per_job', label: 'client CPU µs/job', better: 'lower' },
] as const

/** One (scenario, metric) row: both versions and after ÷ before of the medians. */
interface SummaryRow {
  scenario: ScenarioId
  metric: (typeof METRICS)[number]['key']
  before: Stat | null
  after: Stat | null
  /** after ÷ before of the medians: throughput above 1 is better, CPU below 1. */
  ratio: number | null
}

function summarise(samples: Sample[]): SummaryRow[] {
  return SCENARIOS.flatMap((scenario) =>
    METRICS.map((metric) => {
      const of = (version: Version) =>
        stat(
          samples
            .filter((s) => s.status === 'ok' && s.scenario === scenario.id && s.version === version)
            .map((s) => s[metric.key])
            .filter((v): v is number => typeof v === 'number'),
        )
      const before = of('before')
      const after = of('after')
      const ratio = before && after && before.median > 0 ? round(after.median / before.median, 2) : null
      return { scenario: scenario.id, metric: metric.key, before, after, ratio }
    }),
  )
}

/** 3105 → "3,105"; 81.4 → "81.4" (CPU per job under 100 µs keeps a decimal). */
function num(n: number, metric: SummaryRow['metric']): string {
  const digits = metric !== 'jobs_per_sec' && n < 100 ? 1 : 0
  return n.toLocaleString('en', { maximumFractionDigits: digits, minimumFractionDigits: digits })
}

function cell(s: Stat | null, metric: SummaryRow['metric']): string {
  if (!s) return '–'
  return `${num(s.median, metric)} (${num(s.min, metric)}–${num(s.max, metric)})`
}

/** The Markdown table alone (also printed to the terminal). */
function table(summary: SummaryRow[]): string {
  const lines = ['| Scenario | Measure | before | after | after ÷ before |', '|---|---|--:|--:|--:|']
  let last: ScenarioId | undefined
  for (const row of summary) {
    const scenario = SCENARIOS.find((s) => s.id === row.scenario)!
    const metric = METRICS.find((m) => m.key === row.metric)!
    const ratio = row.ratio === null ? '–' : row.ratio.toFixed(2)
    lines.push(
      `| ${row.scenario === last ? '' : scenario.label} | ${metric.label} | ${cell(row.before, row.metric)} | ${cell(row.after, row.metric)} | ${ratio} |`,
    )
    last = row.scenario
  }
  return lines.join('\n')
}

/** What the run knows beside its samples, for the report. */
export interface RunFacts {
  wallSeconds: number
  loadAtStart: number[]
  loadAtEnd: number[]
  settings: { version: string; fsync: string; synchronous_commit: string }
  beforeCommit: string
  afterCommit: string
  /** `git status --porcelain` lines of what the server runs, at the start. */
  afterDirty: string[]
  /** This checkout at the end, and whether it differs from the start. */
  afterAtEnd: { commit: string; uncommitted: string[] }
  afterChanged: boolean
}

/**
 * Summarises `samples`, writes the JSON and Markdown results (formatted by biome),
 * prints the Markdown and the files written; answers the number of errors.
 */
export async function writeResults(facts: RunFacts, samples: Sample[]): Promise<number> {
  const {
    wallSeconds,
    loadAtStart,
    loadAtEnd,
    settings,
    beforeCommit,
    afterCommit,
    afterDirty,
    afterAtEnd,
    afterChanged,
  } = facts
  const summary = summarise(samples)
  const now = new Date()
  const cpuModel = cpus()[0]?.model ?? 'unknown'
  const fills = (version: Version) => [
    ...new Set(samples.filter((s) => s.version === version && s.fill).map((s) => s.fill)),
  ]
  const report = {
    date: now.toISOString(),
    mode: quick ? 'quick' : 'full',
    wall_seconds: Math.round(wallSeconds),
    rounds,
    sizes: { ...sizes, warmup: 'a tenth of each scenario, untimed' },
    machine: {
      nproc: cpus().length,
      cpu: cpuModel,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      bun: Bun.version,
      load_average: { start: loadAtStart, end: loadAtEnd },
    },
    postgres: {
      version: settings.version,
      fsync: settings.fsync,
      synchronous_commit: settings.synchronous_commit,
      source: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded (bench/support.ts, default durability)',
    },
    before: { ref: baselineRef, commit: beforeCommit, fill: fills('before') },
    after: {
      ref: 'this checkout',
      commit: afterCommit,
      uncommitted: afterDirty,
      fill: fills('after'),
      ...(afterChanged ? { changed_during_run: afterAtEnd } : {}),
    },
    scenarios: SCENARIOS,
    summary,
    samples,
  }
  const errors = samples.filter((s) => s.status === 'error')
  const pgVersion = /^PostgreSQL [\d.]+/.exec(settings.version)?.[0] ?? settings.version
  const md = [
    `### Before and after, ${now.toISOString().slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Before \`${baselineRef}\` (${beforeCommit.slice(0, 12)}), after this checkout (${afterCommit.slice(0, 12)}${afterDirty.length ? `, with uncommitted changes to ${afterDirty.map((l) => l.slice(3)).join(', ')}` : ''}). ` +
      `${rounds} round(s), each server in its own process (\`bun <root>/src/index.ts\`), alternating which goes first; ` +
      `${sizes.concurrency} in flight; ${pgVersion} (fsync=${settings.fsync}, synchronous_commit=${settings.synchronous_commit}, ${report.postgres.source}); ` +
      `${report.machine.nproc} cores (${cpuModel}), load average ${loadAtStart.join(' / ')} at start, ${loadAtEnd.join(' / ')} at end; ` +
      `wall time ${Math.round(wallSeconds)} s; \`${quick ? 'bun bench/before-after/run.ts --quick' : 'npm run bench:before-after'}\`.`,
    '',
    ...(afterChanged
      ? [
          `**This checkout changed during the run** (now ${afterAtEnd.commit.slice(0, 12)}${afterAtEnd.uncommitted.length ? ` with ${afterAtEnd.uncommitted.length} uncommitted file(s)` : ''}): "after" rounds may differ.`,
          '',
        ]
      : []),
    table(summary),
    '',
    `Median (min–max) of the rounds; after ÷ before of the medians: throughput above 1 is better, CPU below 1 is better. ` +
      `Jobs timed: ${sizes.enqueue.toLocaleString('en')} single enqueues, ${sizes.processSingle.toLocaleString('en')} jobs processed one per claim, ` +
      `${sizes.processBatched.toLocaleString('en')} batched, each after an untimed warm-up of a tenth as many. ` +
      'CPU is utime + stime over the timed phase: the server process; all of Postgres (postmaster, its children, and children reaped during the phase); ' +
      'and this process (the load generator, and the Workers in their row). The queue is filled untimed before each process scenario ' +
      `(before: ${fills('before').join(', ') || '–'}; after: ${fills('after').join(', ') || '–'}) and vacuumed.`,
    '',
    ...SCENARIOS.map((s) => `- ${s.label}: ${s.how}.`),
    ...(errors.length
      ? [
          '',
          `**${errors.length} error(s):**`,
          ...errors.map((e) => `- round ${e.round} ${e.version} ${e.scenario}: ${e.error}`),
        ]
      : []),
  ].join('\n')

  const dir = join(repo, 'bench/results')
  await mkdir(dir, { recursive: true })
  const stamp = now
    .toISOString()
    .replace(/:\d\d\.\d+Z$/, 'Z')
    .replace(':', '')
  const names = quick ? ['before-after-quick'] : [`before-after-${stamp}`, 'before-after-latest']
  const files = names.flatMap((name) => [join(dir, `${name}.json`), join(dir, `${name}.md`)])
  for (const file of files)
    await writeFile(file, file.endsWith('.json') ? `${JSON.stringify(report, null, 2)}\n` : `${md}\n`)
  // The results live in the repository: shape them the way `biome check` wants them (tables aligned).
  const biome = spawnSync(join(repo, 'node_modules/.bin/biome'), ['format', '--write', ...files], {
    encoding: 'utf8',
    timeout: 60_000,
  })
  if (biome.status !== 0) console.error(`biome format of the results failed: ${biome.stderr.slice(-500)}`)
  console.log(`\n${readFileSync(files[1]!, 'utf8')}`)
  console.log(`wall time ${wallSeconds.toFixed(0)} s; wrote ${files.map((f) => f.slice(repo.length + 1)).join(', ')}`)
  return errors.length
}
