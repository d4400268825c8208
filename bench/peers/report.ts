/** Medians, ranges and ratios of a side-by-side run, as JSON and a README-pasteable Markdown table. */
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { CellResult, Scenario, Sizes } from './common'
import type { Cell } from './run'

export interface Stat {
  median: number
  min: number
  max: number
}

/** One system/variant on one row, over the repetitions. */
export interface SummaryCell {
  system: Cell['system']
  variant: string
  status: CellResult['status']
  runs: number
  jobs_per_sec?: Stat
  p50_ms?: Stat
  p99_ms?: Stat
  cpu_s_per_10k?: Stat
  peak_rss_mb?: Stat
  measured?: string
  client_cpu_s_per_10k?: Stat
  client_peak_rss_mb?: Stat
  note?: string
  errors?: string[]
}

export interface SummaryRow {
  scenario: Scenario
  label: string
  cells: SummaryCell[]
  /** Foreman's median over the best peer's median (throughput: >1 is faster; latency p50: <1 is quicker). */
  foreman_vs_best_peer?: { ratio: number; best: string }
  /** Foreman's median over the floor's (throughput rows). */
  foreman_vs_floor?: number
}

export interface Report {
  date: string
  mode: 'quick' | 'full'
  wall_seconds: number
  machine: {
    cores: number
    cpu: string
    memory_gb: number
    bun: string
    /** One-minute load average when the run started and ended (others may share the machine). */
    load_average_1m?: { start: number; end: number }
  }
  postgres: { version: string; fsync: string; synchronous_commit: string; max_connections: number; source: string }
  peers: Record<string, string>
  repetitions: number
  sizes: Sizes
  cells: Cell[]
  summary: SummaryRow[]
  results: (CellResult & { rep: number })[]
}

export const LABELS: Record<Scenario, string> = {
  enqueue_single: 'enqueue, one per call',
  enqueue_bulk: 'enqueue, 1,000 per call',
  process_single: 'process, one job per claim',
  process_batched: 'process, batched claims and acks (50)',
  latency: 'pickup latency p50 / p99 (ms)',
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b)
  const mid = Math.floor(s.length / 2)
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2
}

function stat(values: (number | undefined)[]): Stat | undefined {
  const xs = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v))
  if (xs.length === 0) return undefined
  return { median: median(xs), min: Math.min(...xs), max: Math.max(...xs) }
}

export function summarise(results: CellResult[], cells: Cell[]): SummaryRow[] {
  const scenarios = Object.keys(LABELS) as Scenario[]
  return scenarios.map((scenario) => {
    const row: SummaryRow = { scenario, label: LABELS[scenario], cells: [] }
    for (const cell of cells) {
      if (!cell.scenarios.includes(scenario)) continue
      const mine = results.filter(
        (r) => r.scenario === scenario && r.system === cell.system && r.variant === cell.variant,
      )
      const ok = mine.filter((r) => r.status === 'ok')
      const status = ok.length > 0 ? 'ok' : (mine[0]?.status ?? 'skipped')
      const errors = mine.filter((r) => r.status === 'error').map((r) => r.error ?? 'error')
      row.cells.push({
        system: cell.system,
        variant: cell.variant,
        status,
        runs: ok.length,
        jobs_per_sec: stat(ok.map((r) => r.jobs_per_sec)),
        p50_ms: stat(ok.map((r) => r.p50_ms)),
        p99_ms: stat(ok.map((r) => r.p99_ms)),
        cpu_s_per_10k: stat(ok.map((r) => r.cpu_s_per_10k)),
        peak_rss_mb: stat(ok.map((r) => r.peak_rss_mb)),
        measured: ok[0]?.measured,
        client_cpu_s_per_10k: stat(ok.map((r) => r.client_cpu_s_per_10k)),
        client_peak_rss_mb: stat(ok.map((r) => r.client_peak_rss_mb)),
        note: mine.find((r) => r.note)?.note,
        ...(errors.length ? { errors } : {}),
      })
    }
    const value = (c: SummaryCell) => (scenario === 'latency' ? c.p50_ms?.median : c.jobs_per_sec?.median)
    // Foreman's default variant (client loops in the batched row) is the one compared.
    const foreman = row.cells.find((c) => c.system === 'foreman' && c.variant === 'default')
    const foremanValue = foreman && value(foreman)
    const peers = row.cells.filter((c) => (c.system === 'pgboss' || c.system === 'graphile') && value(c) !== undefined)
    if (foremanValue !== undefined && peers.length > 0) {
      const better = (a: SummaryCell, b: SummaryCell) =>
        scenario === 'latency' ? value(a)! < value(b)! : value(a)! > value(b)!
      const best = peers.reduce((a, b) => (better(b, a) ? b : a))
      row.foreman_vs_best_peer = {
        ratio: Number((foremanValue / value(best)!).toFixed(2)),
        best: `${best.system}/${best.variant}`,
      }
    }
    const floor = row.cells.find((c) => c.system === 'floor')
    const floorValue = floor && value(floor)
    if (foremanValue !== undefined && floorValue !== undefined && scenario !== 'latency') {
      row.foreman_vs_floor = Number((foremanValue / floorValue).toFixed(2))
    }
    return row
  })
}

// ---- Markdown -------------------------------------------------------------------
const SYSTEMS: { system: Cell['system']; title: (r: Report) => string; measured: string }[] = [
  { system: 'floor', title: () => 'raw SQL floor (postgres.js on Bun)', measured: 'bench process' },
  { system: 'pgboss', title: (r) => `pg-boss ${r.peers['pg-boss']}`, measured: 'worker process' },
  { system: 'graphile', title: (r) => `graphile-worker ${r.peers['graphile-worker']}`, measured: 'worker process' },
  { system: 'foreman', title: () => 'Foreman (HTTP)', measured: 'server process' },
]

/** 9321 → 9.3k, 139400 → 139k, 520 → 520. */
function rate(n: number): string {
  if (n >= 100_000) return `${Math.round(n / 1000)}k`
  if (n >= 1000) return `${(n / 1000).toFixed(1)}k`
  return String(Math.round(n))
}

/** `9.3k (9.1–9.6k)`: the range drops a unit it shares with its upper end. */
function rateRange(s: Stat): string {
  const [lo, hi] = [rate(s.min), rate(s.max)]
  const shared = lo.endsWith('k') && hi.endsWith('k') ? lo.slice(0, -1) : lo
  return `${rate(s.median)} (${shared}–${hi})`
}
const ms = (n: number) => (n >= 100 ? n.toFixed(0) : n.toFixed(1))

function cellText(c: SummaryCell, scenario: Scenario): string {
  if (c.status !== 'ok') return c.status === 'skipped' ? '—' : c.status
  if (scenario === 'latency') {
    if (!c.p50_ms || !c.p99_ms) return '—'
    return `${ms(c.p50_ms.median)} / ${ms(c.p99_ms.median)} (${ms(c.p50_ms.min)}–${ms(c.p50_ms.max)} / ${ms(c.p99_ms.min)}–${ms(c.p99_ms.max)})`
  }
  return c.jobs_per_sec ? rateRange(c.jobs_per_sec) : '—'
}

/** How a variant is named where it shares its system's column with another, or is not the default. */
const VARIANT_LABELS: Record<string, string> = {
  'pgboss/notify': 'notify',
  'pgboss/polling': 'polling',
  'graphile/default': 'default',
  'graphile/batched': 'batched',
  'foreman/default': 'client loops',
  'foreman/worker': 'Workers',
}

/** Several variants of one system share its column; each is named unless it is the only, default one. */
function labelled(row: SummaryRow, system: Cell['system'], text: (c: SummaryCell) => string, okOnly = false): string {
  const mine = row.cells.filter((c) => c.system === system && (!okOnly || c.status === 'ok'))
  if (mine.length === 0) return '—'
  const named = mine.length > 1 || mine[0]!.variant !== 'default'
  const label = (c: SummaryCell) => VARIANT_LABELS[`${c.system}/${c.variant}`] ?? c.variant
  return mine.map((c) => (named ? `${text(c)} ${label(c)}` : text(c))).join('; ')
}

const column = (row: SummaryRow, system: Cell['system']) => labelled(row, system, (c) => cellText(c, row.scenario))

function resourceText(c: SummaryCell): string {
  if (c.status !== 'ok' || !c.cpu_s_per_10k || !c.peak_rss_mb) return '—'
  return `${c.cpu_s_per_10k.median.toFixed(2)} s · ${c.peak_rss_mb.median.toFixed(0)} MB`
}

const resourceColumn = (row: SummaryRow, system: Cell['system']) => labelled(row, system, resourceText, true)

export function renderMarkdown(r: Report): string {
  const pgMajor = /PostgreSQL (\S+)/.exec(r.postgres.version)?.[1] ?? r.postgres.version
  const lines: string[] = []
  const l = r.machine.load_average_1m
  const load = l ? `, load average ${l.start} at start, ${l.end} at end` : ''
  lines.push(`### Foreman side by side with pg-boss and graphile-worker`)
  lines.push('')
  lines.push(
    `${r.sizes.concurrency} in flight, PostgreSQL ${pgMajor} (fsync=${r.postgres.fsync}, synchronous_commit=${r.postgres.synchronous_commit}), ` +
      `all on one machine (${r.machine.cores} cores, ${r.machine.cpu}, ${r.machine.memory_gb} GB${load}) and one database; ` +
      `jobs/s, median of ${r.repetitions} interleaved repetition${r.repetitions > 1 ? 's' : ''} (min–max). ` +
      `${r.date.slice(0, 10)}, \`npm run bench:peers\`${r.mode === 'quick' ? ' --quick (tiny sizes: harness check only)' : ''}.`,
  )
  lines.push('')
  const head = ['Work', ...SYSTEMS.map((s) => s.title(r)), 'Foreman ÷ best peer', 'Foreman ÷ floor']
  lines.push(`| ${head.join(' | ')} |`)
  lines.push(`|${head.map(() => '---').join('|')}|`)
  for (const row of r.summary) {
    const vsPeer = row.foreman_vs_best_peer
      ? `${row.foreman_vs_best_peer.ratio.toFixed(2)} (${row.foreman_vs_best_peer.best.replace('pgboss', 'pg-boss').replace('graphile', 'graphile-worker')})`
      : '—'
    const vsFloor = row.foreman_vs_floor !== undefined ? row.foreman_vs_floor.toFixed(2) : '—'
    lines.push(`| ${row.label} | ${SYSTEMS.map((s) => column(row, s.system)).join(' | ')} | ${vsPeer} | ${vsFloor} |`)
  }
  lines.push('')
  lines.push(
    'Ratios are of medians; for throughput above 1 means Foreman is faster, for latency (p50) below 1 means Foreman picks up sooner.',
  )
  lines.push('')
  lines.push('CPU seconds per 10,000 jobs · peak RSS of the process doing the work (median):')
  lines.push('')
  const head2 = ['Work', ...SYSTEMS.map((s) => `${s.title(r).replace(/ \(.*\)$/, '')} (${s.measured})`)]
  lines.push(`| ${head2.join(' | ')} |`)
  lines.push(`|${head2.map(() => '---').join('|')}|`)
  for (const row of r.summary) {
    const label = row.scenario === 'latency' ? 'pickup latency (idle waiting)' : row.label
    lines.push(`| ${label} | ${SYSTEMS.map((s) => resourceColumn(row, s.system)).join(' | ')} |`)
  }
  const client = r.summary
    .map((row) => ({ row, c: row.cells.find((c) => c.system === 'foreman' && c.client_cpu_s_per_10k) }))
    .filter((x) => x.c)
    .map(
      (x) =>
        `${x.row.label.replace(/ p50.*$/, '')} ${x.c!.client_cpu_s_per_10k!.median.toFixed(2)} s · ${x.c!.client_peak_rss_mb!.median.toFixed(0)} MB`,
    )
  lines.push('')
  lines.push(
    "The peers' figures are their worker process, which also runs the load generator (their library is in-process); " +
      "Foreman's are the server alone. Its client process (TS client/Worker plus load generator): " +
      `${client.join('; ') || '—'}.`,
  )
  lines.push('')
  lines.push(
    'How each row is driven: enqueue = 16 concurrent calls (`client.enqueue`, `boss.send`, `workerUtils.addJob`, one INSERT), ' +
      'bulk = 16 concurrent calls of 1,000 (`client.enqueueMany`, `boss.insert`, `workerUtils.addJobs`, one INSERT … SELECT); ' +
      'one per claim = 16 Foreman Workers of concurrency 1 (each completion also claims the next job: `POST /runs/complete` with `claim`), 16 `boss.fetch`→`boss.complete` loops, graphile-worker `run` with concurrency 16, ' +
      '16 claim→delete loops; batched = 16 Foreman loops of `claimMany(50)`, then `completeAndClaim(50)` acking the batch held and taking the next in one call (and, as "Workers", 16 Foreman Workers of concurrency 50), pg-boss `work` with batchSize 50 × localConcurrency 16 (burstWhenBatchFull), ' +
      'graphile-worker concurrency 16 with localQueue 50 and completeJobBatchDelay 0, 16 claim-50→delete loops; ' +
      'latency = one job at a time to an idle waiting worker (Foreman Worker long-poll, pg-boss `work` on a notify queue, graphile-worker LISTEN), ' +
      `enqueue call start to handler start, ${r.sizes.latencySamples} samples. pg-boss "polling" is a plain queue, "notify" a queue with \`notify: true\` and \`useListenNotify\`.`,
  )
  return lines.join('\n')
}

/** Writes peers-<date>.{json,md} and peers-latest.{json,md} (peers-quick.* for a quick run); answers their paths without extension. */
export async function writeReport(r: Report, dir: string): Promise<string[]> {
  await mkdir(dir, { recursive: true })
  const md = `${renderMarkdown(r)}\n`
  const json = `${JSON.stringify(r, null, 2)}\n`
  const names = r.mode === 'quick' ? ['peers-quick'] : [`peers-${r.date.slice(0, 10)}`, 'peers-latest']
  const written: string[] = []
  for (const name of names) {
    await writeFile(join(dir, `${name}.json`), json)
    await writeFile(join(dir, `${name}.md`), md)
    written.push(join(dir, name))
  }
  return written
}
