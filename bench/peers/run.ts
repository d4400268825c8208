/**
 * Side by side: Foreman over HTTP (server in its own process, driven by the TS
 * client and Worker), pg-boss (polling and notify queues), graphile-worker
 * (default and batched) and a raw-SQL floor, on one Postgres in one run.
 *
 *   npm run bench:peers                 (installs bench/package.json's pinned peers, then this)
 *   bun bench/peers/run.ts [--quick] [--reps N] [--only foreman,floor] [--out DIR]
 *
 * Every (system, scenario, repetition) runs in a child process of its own
 * (`bun bench/peers/<system>.ts <scenario> <variant>`, one JSON line out) with a
 * hard timeout; repetitions are interleaved (for rep: for scenario: for system)
 * so drift in the machine or the database hits every system alike. Foreman's
 * server is started fresh for each of its children on a fresh table prefix; the
 * peers get a fresh schema each. Results: bench/results/peers-<date>.{json,md}
 * and peers-latest.{json,md}. `--quick` (or BENCH_QUICK=1) uses tiny sizes and one
 * repetition, to check the harness in seconds; its results go to peers-quick.*.
 */
import { spawn } from 'node:child_process'
import { cpus, loadavg, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import postgres from 'postgres'
import { dropTables } from '../../src/db/migrate'
import { tablesFor } from '../../src/db/tables'
import { type ForemanProcess, startForemanProcess } from '../foreman-process'
import { benchDatabase } from '../support'
import { type CellResult, FULL_SIZES, QUICK_SIZES, RESULT_MARK, SCENARIOS, type Scenario } from './common'
import { type Report, summarise, writeReport } from './report'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolve(here, '../..')
const bun = process.execPath

// ---- arguments ----------------------------------------------------------------
const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(name)
const option = (name: string) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const quick = flag('--quick') || process.env.BENCH_QUICK === '1'
const sizes = quick ? QUICK_SIZES : FULL_SIZES
const reps = Number(option('--reps') ?? (quick ? 1 : 3))
const only = option('--only')?.split(',')
const outDir = resolve(option('--out') ?? join(repo, 'bench/results'))
/** A child that takes longer than this is killed and its cell recorded as an error. */
const childTimeoutMs = quick ? 60_000 : 180_000

/** One column variant: a system, how it is configured, and the rows it runs. */
export interface Cell {
  system: 'floor' | 'pgboss' | 'graphile' | 'foreman'
  variant: string
  scenarios: Scenario[]
}

const CELLS: Cell[] = [
  {
    system: 'floor',
    variant: 'default',
    scenarios: ['enqueue_single', 'enqueue_bulk', 'process_single', 'process_batched'],
  },
  { system: 'pgboss', variant: 'notify', scenarios: ['enqueue_single', 'enqueue_bulk', 'latency'] },
  {
    system: 'pgboss',
    variant: 'polling',
    scenarios: ['enqueue_single', 'enqueue_bulk', 'process_single', 'process_batched'],
  },
  {
    system: 'graphile',
    variant: 'default',
    scenarios: ['enqueue_single', 'enqueue_bulk', 'process_single', 'latency'],
  },
  { system: 'graphile', variant: 'batched', scenarios: ['process_batched', 'latency'] },
  { system: 'foreman', variant: 'default', scenarios: [...SCENARIOS] },
  { system: 'foreman', variant: 'worker', scenarios: ['process_batched'] },
].filter((c) => !only || only.includes(c.system)) as Cell[]

// ---- processes ----------------------------------------------------------------
interface Exit {
  code: number | null
  stdout: string
  stderr: string
  timedOut: boolean
}

/** Runs a command to its end (or kills it at `timeoutMs`), collecting its output. */
function runProcess(command: string, args: string[], env: Record<string, string>, timeoutMs: number): Promise<Exit> {
  return new Promise((done) => {
    const child = spawn(command, args, {
      cwd: repo,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    let timedOut = false
    child.stdout.on('data', (d) => {
      stdout += d
    })
    child.stderr.on('data', (d) => {
      stderr += d
    })
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    child.on('close', (code) => {
      clearTimeout(timer)
      done({ code, stdout, stderr, timedOut })
    })
  })
}

/** Runs one cell: its child (and for Foreman its server), answering the child's result. */
async function runCell(cell: Cell, scenario: Scenario, rep: number, dbUrl: string, admin: postgres.Sql) {
  const tag = `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
  const base = { system: cell.system, variant: cell.variant, scenario }
  const env: Record<string, string> = { BENCH_DB_URL: dbUrl, BENCH_SIZES: JSON.stringify(sizes), BENCH_TAG: tag }
  let server: ForemanProcess | undefined
  const prefix = `bp_${tag}_`
  const started = performance.now()
  let result: CellResult
  try {
    if (cell.system === 'foreman') {
      server = await startForemanProcess(repo, dbUrl, prefix)
      env.FOREMAN_URL = server.origin
      env.FOREMAN_PID = String(server.pid)
    }
    const exit = await runProcess(bun, [join(here, `${cell.system}.ts`), scenario, cell.variant], env, childTimeoutMs)
    const line = exit.stdout
      .split('\n')
      .reverse()
      .find((l) => l.startsWith(RESULT_MARK))
    if (line) result = JSON.parse(line.slice(RESULT_MARK.length)) as CellResult
    else {
      const why = exit.timedOut ? `killed after ${childTimeoutMs / 1000} s` : `exited ${exit.code} without a result`
      result = { ...base, status: 'error', error: `${why}: ${exit.stderr.slice(-1500)}` }
    }
    if (result.status === 'error' && exit.stderr) result.error = `${result.error}\n${exit.stderr.slice(-1500)}`
  } catch (error) {
    result = { ...base, status: 'error', error: error instanceof Error ? error.message : String(error) }
  } finally {
    await server?.stop()
  }
  if (cell.system === 'foreman') await dropTables(admin, tablesFor(prefix)).catch(() => {})
  // Peers drop their own schema; catch what a killed child left behind.
  await admin.unsafe(`drop schema if exists pgb_${tag} cascade`).catch(() => {})
  await admin.unsafe(`drop schema if exists gw_${tag} cascade`).catch(() => {})
  await admin.unsafe(`drop table if exists floor_${tag}`).catch(() => {})
  const wall = (performance.now() - started) / 1000
  const shown =
    result.status === 'ok'
      ? result.jobs_per_sec !== undefined
        ? `${result.jobs_per_sec} jobs/s`
        : `p50 ${result.p50_ms} ms, p99 ${result.p99_ms} ms`
      : `${result.status}${result.error ? `: ${result.error.split('\n')[0]}` : ''}`
  console.log(
    `rep ${rep} ${scenario.padEnd(15)} ${`${cell.system}/${cell.variant}`.padEnd(17)} ${shown} (${wall.toFixed(1)} s)`,
  )
  return { ...result, rep }
}

// ---- main ---------------------------------------------------------------------
const runStarted = performance.now()
// The machine may be shared: the load around the run says how far to trust it.
const loadAtStart = loadavg()[0]!
const db = await benchDatabase()
const admin = postgres(db.url, { max: 2, onnotice: () => {} })
try {
  const [settings] = await admin<
    { version: string; fsync: string; synchronous_commit: string; max_connections: string }[]
  >`
    select version(), current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit,
      current_setting('max_connections') as max_connections`
  console.log(`${settings!.version}; fsync=${settings!.fsync} synchronous_commit=${settings!.synchronous_commit}`)
  // A system holds up to ~20 connections at a time (pool of 10 to 16, plus listeners and our admin pool).
  if (Number(settings!.max_connections) < 60)
    console.warn(`max_connections is ${settings!.max_connections}: 60 or more advised`)
  console.log(`${quick ? 'quick' : 'full'} run: ${reps} repetition(s), sizes ${JSON.stringify(sizes)}`)

  const results: (CellResult & { rep: number })[] = []
  for (let rep = 1; rep <= reps; rep++) {
    for (const scenario of SCENARIOS) {
      for (const cell of CELLS) {
        if (!cell.scenarios.includes(scenario)) continue
        results.push(await runCell(cell, scenario, rep, db.url, admin))
      }
    }
  }

  const wallSeconds = (performance.now() - runStarted) / 1000
  const cpuModel = cpus()[0]?.model ?? 'unknown'
  const report: Report = {
    date: new Date().toISOString(),
    mode: quick ? 'quick' : 'full',
    wall_seconds: Math.round(wallSeconds),
    machine: {
      cores: cpus().length,
      cpu: cpuModel,
      memory_gb: Math.round(totalmem() / 2 ** 30),
      bun: Bun.version,
      load_average_1m: { start: Number(loadAtStart.toFixed(2)), end: Number(loadavg()[0]!.toFixed(2)) },
    },
    postgres: {
      version: settings!.version,
      fsync: settings!.fsync,
      synchronous_commit: settings!.synchronous_commit,
      max_connections: Number(settings!.max_connections),
      source: process.env.DATABASE_URL ? 'DATABASE_URL' : 'embedded (bench/support.ts, default durability)',
    },
    peers: await peerVersions(),
    repetitions: reps,
    sizes,
    cells: CELLS,
    summary: summarise(results, CELLS),
    results,
  }
  const written = await writeReport(report, outDir)
  // The results live in the repository: shape them the way `biome check` wants them.
  const files = written.flatMap((w) => [`${w}.json`, `${w}.md`])
  const biome = await runProcess(join(repo, 'node_modules/.bin/biome'), ['format', '--write', ...files], {}, 60_000)
  if (biome.code !== 0) console.error(`biome format of the results failed: ${biome.stderr.slice(-500)}`)
  console.log(`\n${await Bun.file(files[1]!).text()}`)
  console.log(`wall time ${wallSeconds.toFixed(0)} s; wrote ${files.join(', ')}`)
  if (results.some((r) => r.status === 'error')) process.exitCode = 1
} finally {
  await admin.end({ timeout: 5 })
  await db.stop()
}

async function peerVersions(): Promise<Record<string, string>> {
  const read = async (name: string) => {
    try {
      return ((await Bun.file(join(repo, 'bench/node_modules', name, 'package.json')).json()) as { version: string })
        .version
    } catch {
      return 'not installed'
    }
  }
  return {
    'pg-boss': await read('pg-boss'),
    'graphile-worker': await read('graphile-worker'),
    pg: await read('pg'),
    postgres: ((await Bun.file(join(repo, 'node_modules/postgres/package.json')).json()) as { version: string })
      .version,
  }
}
