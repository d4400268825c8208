/**
 * What open consoles cost the server: the process benchmark's two processing
 * scenarios (one per claim, batched 50) on one Foreman process, with no console
 * open and with 10 open consoles (headless Chromium pages on /foreman/ui, each
 * holding its live event stream and re-reading what it shows as jobs change),
 * in alternating order per round so drift hits both alike.
 *
 *   npm run bench:console [-- --rounds 3] [--consoles 10] [--pages overview|jobs|mixed]
 *
 * Per phase: jobs/s, server CPU µs per job (the consoles' reads and streams land
 * on the server too, so this is the cost per job with them), and the server's
 * RSS (peak of samples every 100 ms, and at the end). Chromium runs on the same
 * machine, so jobs/s with consoles also carries the browser's own CPU; the
 * server's CPU per job and RSS are the figures that belong to Foreman.
 * Results: bench/results/console-cost-<date>.{json,md} and console-cost-latest.*.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { dropTables } from '../src/db/migrate'
import { tablesFor } from '../src/db/tables'
import { launchBrowser } from '../tests/support/browser'
import { postmasterPid, reader } from './before-after/cpu'
import { LIMITS, repo } from './before-after/options'
import { round } from './before-after/sample'
import { type Context, RUNNERS } from './before-after/scenarios'
import { liveForemanProcesses, startForemanProcess } from './foreman-process'
import { benchDatabase } from './support'

const argv = process.argv.slice(2)
const option = (name: string, fallback: number) => {
  const at = argv.indexOf(`--${name}`)
  return at >= 0 ? Number(argv[at + 1]) : fallback
}
const rounds = option('rounds', 3)
const consoles = option('consoles', 10)
/** The console pages opened, round-robin: half on the overview, half on the job list (`--pages overview|jobs|mixed`). */
const pagesArg = argv[argv.indexOf('--pages') + 1]
const PAGES = argv.includes('--pages')
  ? { overview: ['/foreman/ui/'], jobs: ['/foreman/ui/jobs'], mixed: ['/foreman/ui/', '/foreman/ui/jobs'] }[
      pagesArg as 'overview' | 'jobs' | 'mixed'
    ]
  : ['/foreman/ui/', '/foreman/ui/jobs']
if (!PAGES) throw new Error(`--pages wants overview, jobs or mixed, got ${pagesArg}`)
const SCENARIOS = ['process_single_http', 'process_batched_http'] as const

interface PhaseResult {
  round: number
  consoles: number
  scenario: (typeof SCENARIOS)[number]
  jobs_per_sec?: number
  server_cpu_us_per_job?: number
  pg_cpu_us_per_job?: number | null
  /** Cores the server and Postgres used in the timed phase (CPU seconds per second). */
  server_cores?: number
  pg_cores?: number | null
  /** Cores every Chromium process used over the phase, its untimed fill included. */
  browser_cores?: number
  rss_peak_mb?: number
  rss_end_mb?: number
  error?: string
}

/** The server's resident set in MB (VmRSS). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? Number.NaN)
  return kb / 1024
}

/** CPU seconds of every Chromium process alive now (the consoles' browser). */
function browserCpuSeconds(): number {
  let ticks = 0
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
      if (!/^\d+ \(chrom/.test(stat)) continue
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      ticks += Number(f[11]) + Number(f[12])
    } catch {
      // Gone between listing and reading.
    }
  }
  return ticks / 100
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? (sorted[mid] ?? 0) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2
}

const loadAtStart = loadavg().map((l) => round(l))
const db = await benchDatabase()
const admin = postgres(db.url, { max: 2, onnotice: () => {}, connection: { statement_timeout: LIMITS.statementMs } })
const browser = await launchBrowser()
const prefix = `cc_${Date.now().toString(36)}_`
const tables = tablesFor(prefix)
const results: PhaseResult[] = []
let postmaster: number | null = null
try {
  postmaster = await postmasterPid(admin)
  const server = await startForemanProcess(repo, db.url, prefix)
  const ctx: Context = {
    server,
    admin,
    jobsTable: tables.jobs,
    runsTable: tables.runs,
    read: reader(server.pid, postmaster),
  }
  for (let r = 1; r <= rounds; r++) {
    const order = r % 2 === 1 ? [0, consoles] : [consoles, 0]
    for (const open of order) {
      // One browser context per console, as ten operators would have: a browser
      // keeps at most 6 HTTP/1.1 connections per host, and each console holds one
      // for its event stream, so ten tabs of one profile would queue the seventh.
      const contexts = []
      for (let k = 0; k < open; k++) {
        const context = await browser.newContext()
        const page = await context.newPage()
        await page.goto(`${server.origin}${PAGES[k % PAGES.length]}`, { waitUntil: 'load' })
        contexts.push(context)
      }
      // Let every page settle (first reads done, streams open) before timing.
      await Bun.sleep(open ? 2000 : 0)
      for (const scenario of SCENARIOS) {
        let peak = 0
        const sampler = setInterval(() => {
          peak = Math.max(peak, rssMb(server.pid))
        }, 100)
        const phase: PhaseResult = { round: r, consoles: open, scenario }
        const browserBefore = { cpu: browserCpuSeconds(), at: performance.now() }
        try {
          const outcome = await RUNNERS[scenario](ctx)
          const cores = (usPerJob: number | null | undefined) =>
            usPerJob == null || !outcome.jobs || !outcome.seconds
              ? null
              : round((usPerJob * outcome.jobs) / outcome.seconds / 1e6, 2)
          phase.jobs_per_sec = outcome.jobs_per_sec
          phase.server_cpu_us_per_job = outcome.server_cpu_us_per_job
          phase.pg_cpu_us_per_job = outcome.pg_cpu_us_per_job
          phase.server_cores = cores(outcome.server_cpu_us_per_job) ?? undefined
          phase.pg_cores = cores(outcome.pg_cpu_us_per_job)
          phase.browser_cores = round(
            (browserCpuSeconds() - browserBefore.cpu) / ((performance.now() - browserBefore.at) / 1000),
            2,
          )
        } catch (error) {
          phase.error = error instanceof Error ? error.message : String(error)
        } finally {
          clearInterval(sampler)
        }
        phase.rss_peak_mb = round(Math.max(peak, rssMb(server.pid)), 1)
        phase.rss_end_mb = round(rssMb(server.pid), 1)
        results.push(phase)
        console.log(JSON.stringify(phase))
      }
      await Promise.all(contexts.map((c) => c.close()))
      // Finished jobs of the phase would otherwise make the next phase's lists and counts heavier.
      await admin.unsafe(`delete from "${tables.jobs}"`)
      await admin.unsafe(`vacuum (analyze) "${tables.jobs}", "${tables.runs}"`)
    }
  }
  await server.stop()
} finally {
  for (const child of liveForemanProcesses) child.kill('SIGKILL')
  await browser.close()
  await dropTables(admin, tables).catch(() => {})
  await admin.end({ timeout: 5 })
  await db.stop()
}

const lines = [
  `# Console cost: ${consoles} open consoles during the process benchmark`,
  '',
  `${rounds} rounds, alternating order; load average at start ${loadAtStart.join(' ')}, at end ${loadavg()
    .map((l) => round(l))
    .join(' ')}. Medians over rounds.`,
  '',
  '| scenario | consoles | jobs/s | server CPU µs/job | Postgres CPU µs/job | server cores | Postgres cores | browser cores | server RSS peak MB | RSS at end MB |',
  '|---|---|---|---|---|---|---|---|---|---|',
]
for (const scenario of SCENARIOS) {
  for (const open of [0, consoles]) {
    const ok = results.filter((p) => p.scenario === scenario && p.consoles === open && !p.error)
    const m = (pick: (p: PhaseResult) => number | null | undefined) =>
      ok.length ? round(median(ok.map((p) => pick(p) ?? Number.NaN)), 1) : '–'
    lines.push(
      `| ${scenario} | ${open} | ${m((p) => p.jobs_per_sec)} | ${m((p) => p.server_cpu_us_per_job)} | ${m((p) => p.pg_cpu_us_per_job)} | ${m((p) => p.server_cores)} | ${m((p) => p.pg_cores)} | ${m((p) => p.browser_cores)} | ${m((p) => p.rss_peak_mb)} | ${m((p) => p.rss_end_mb)} |`,
    )
  }
}
const errors = results.filter((p) => p.error)
if (errors.length) lines.push('', `Errors: ${errors.map((p) => `${p.scenario}/${p.consoles}: ${p.error}`).join('; ')}`)
const report = lines.join('\n')
console.log(`\n${report}`)
const dir = join(repo, 'bench/results')
await mkdir(dir, { recursive: true })
const iso = new Date().toISOString()
// Like the other results: 2026-12-03T0358Z.
const stamp = `${iso.slice(0, 13)}${iso.slice(14, 16)}Z`
for (const name of [`console-cost-${stamp}`, 'console-cost-latest']) {
  await writeFile(join(dir, `${name}.json`), JSON.stringify({ rounds, consoles, results }, null, 2))
  await writeFile(join(dir, `${name}.md`), `${report}\n`)
}
if (errors.length) process.exitCode = 1
