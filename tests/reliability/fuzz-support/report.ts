/** The run's figures: printed always, written to bench/results/reliability/fuzz.json in full mode. */
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { Fuzzer } from './runner'

const RESULTS_DIR = resolve(import.meta.dir, '..', '..', '..', 'bench', 'results', 'reliability')

/** What fuzz.json holds. */
export interface FuzzResults {
  cases: number
  routes: number
  fivexx: number
  hangs: number
  leaked_sql: number
  refused_changed_data: number
  non_json_refusals: number
  no_answer: number
  leaked_internals: number
  duration_s: number
  seed: number
  cases_per_route: Record<string, number>
  statuses: Record<string, number>
  /** The first few problems, one per (route, kind), for a reader of the file. */
  examples: {
    kind: string
    route: string
    label: string
    status: number
    detail: string
    serverLog: string
    replay: string
  }[]
}

/** The figures, and a readable text with every kept violation and its replay line. */
export function summarize(
  fuzzer: Fuzzer,
  routes: number,
  durationS: number,
  serverErrors: string[],
): { results: FuzzResults; text: string } {
  const t = fuzzer.tally
  const seen = new Set<string>()
  const examples = t.violations
    .filter((v) => {
      const key = `${v.route} ${v.kind}`
      if (seen.has(key)) return false
      seen.add(key)
      return true
    })
    .map(({ kind, route, label, status, detail, serverLog, replay }) => ({
      kind,
      route,
      label,
      status,
      detail,
      serverLog,
      replay,
    }))
  const results: FuzzResults = {
    cases: t.cases,
    routes,
    fivexx: t.byKind.fivexx,
    hangs: t.byKind.hang,
    leaked_sql: t.byKind['leaked-sql'],
    refused_changed_data: t.byKind['refused-changed-data'],
    non_json_refusals: t.byKind['non-json-refusal'],
    no_answer: t.byKind['no-answer'],
    leaked_internals: t.byKind['leaked-internals'],
    duration_s: Math.round(durationS * 10) / 10,
    seed: fuzzer.seed,
    cases_per_route: t.perRoute,
    statuses: t.statuses,
    examples,
  }
  const lines = [
    `fuzz: ${t.cases} cases over ${routes} routes in ${results.duration_s} s, seed ${fuzzer.seed}`,
    `  statuses ${JSON.stringify(t.statuses)}`,
    `  problems ${JSON.stringify(t.byKind)}`,
    ...t.violations.map(
      (v) =>
        `  ✗ ${v.kind} ${v.route} [${v.label}] ${v.method} ${v.url}\n      body ${JSON.stringify(v.body)}\n      → ${v.detail}${v.serverLog ? `\n      server: ${v.serverLog}` : ''}\n      replay: ${v.replay}`,
    ),
  ]
  const errors = distinctErrors(serverErrors)
  if (errors.length) lines.push('  server error log (distinct):', ...errors.map((e) => `    ${e}`))
  return { results, text: lines.join('\n') }
}

/** The server's error lines reduced to distinct `type: message (route)` with counts. */
export function distinctErrors(lines: string[]): string[] {
  const counts = new Map<string, number>()
  for (const line of lines) {
    let key = line.slice(0, 300)
    try {
      const entry = JSON.parse(line) as { msg?: string; url?: string; err?: { type?: string; message?: string } }
      if (!entry.err) continue // the request log's own line for a 5xx: the error line says more
      const path = entry.url ? new URL(entry.url).pathname.replace(/(job|run|sched)_[0-9A-Z]{26}/g, ':id') : ''
      // Quoted values (timestamps, ids) vary per case; the message around them does not.
      const message = (entry.err?.message ?? '').replace(/"[^"]*"/g, '"…"').slice(0, 200)
      key = `${entry.msg ?? ''}: ${entry.err?.type ?? ''}: ${message} (${path})`
    } catch {
      // A line cut short (a long stack) is not JSON: its message is still readable.
      const message = line.match(/"message":"((?:[^"\\]|\\.){0,200})/)?.[1]
      if (message) key = `request failed: ${message.replace(/\\"[^"]*\\"/g, '"…"')}`
    }
    counts.set(key, (counts.get(key) ?? 0) + 1)
  }
  return [...counts].map(([key, n]) => `${n}× ${key}`)
}

/** Writes fuzz.json. */
export async function writeResults(results: FuzzResults): Promise<string> {
  await mkdir(RESULTS_DIR, { recursive: true })
  const file = join(RESULTS_DIR, 'fuzz.json')
  await Bun.write(file, `${JSON.stringify(results, null, 2)}\n`)
  return file
}
