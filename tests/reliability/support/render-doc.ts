/**
 * Renders docs/reliability.md from the full run's figures in
 * bench/results/reliability/*.json (the scenarios' and, when present, the route
 * fuzzer's fuzz.json). Run after `time npm run test:reliability`:
 *   bun tests/reliability/support/render-doc.ts --wall "9 min 12 s"
 * The prose lives in reliability-prose.ts; this file only lays out the numbers.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Figures } from './figures'
import { RESULTS_DIR } from './figures'
import { FINDINGS, HOW_IT_WORKS, INTRO, SCENARIO_TEXT } from './reliability-prose'

type Run = Figures & { mode: string; date: string; machine: string }

/** `--wall "9 min 12 s"`: the suite's wall time, as \`time npm run test:reliability\` printed it. */
const wallAt = process.argv.indexOf('--wall')
const wall = wallAt > 0 ? process.argv[wallAt + 1] : undefined
/** `--note "..."`: a line about this run (a scenario re-run, say) printed under the wall time. */
const noteAt = process.argv.indexOf('--note')
const note = noteAt > 0 ? process.argv[noteAt + 1] : undefined

const DOC = resolve(import.meta.dir, '..', '..', '..', 'docs', 'reliability.md')
const n = (x: number) => x.toLocaleString('en-US')
const secs = (ms: number | null) => (ms === null ? '—' : `${(ms / 1000).toFixed(1)} s`)

const runs: Run[] = readdirSync(RESULTS_DIR)
  .filter((f) => /^s\d.*\.json$/.test(f))
  .sort()
  .map((f) => JSON.parse(readFileSync(resolve(RESULTS_DIR, f), 'utf8')) as Run)
const fuzzFile = resolve(RESULTS_DIR, 'fuzz.json')
const fuzz = existsSync(fuzzFile) ? (JSON.parse(readFileSync(fuzzFile, 'utf8')) as Record<string, unknown>) : null

/** Whether the run met its scenario's assertions, as far as its figures tell (the test's own expects decide). */
function verdict(r: Run): string {
  const extra = (r.extra ?? {}) as { terminalEventsMissedPerStream?: number[]; hungRequests?: number }
  const misses: string[] = []
  if (r.lost || r.duplicated || r.unexpected || r.violations) misses.push('checker')
  if (extra.terminalEventsMissedPerStream?.some((n) => n > 0)) misses.push('events missed on a stream (F4/F5)')
  if (extra.hungRequests) misses.push('hung requests (F3)')
  return misses.length === 0 ? 'passed' : `**failed**: ${misses.join(', ')}`
}

const faultsOf = (r: Run) =>
  Object.entries(r.faults)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${kind}: ${n(count)}`)
    .join('; ')

const lines: string[] = [
  '# Reliability: the fault suite',
  '',
  INTRO,
  '',
  `Full run (\`npm run test:reliability\`): ${runs.map((r) => r.date.slice(0, 16).replace('T', ' ')).sort()[0] ?? '—'} UTC,`,
  `${runs[0]?.machine ?? 'unknown machine'} (shared with other work; Postgres is the embedded one, on the same machine).`,
  ...(wall ? [`The whole suite, the route fuzzer included, ran ${wall} of wall time.`] : []),
  ...(note ? [note] : []),
  `Rendered from \`bench/results/reliability/*.json\` by \`bun tests/reliability/support/render-doc.ts\`.`,
  '',
  '## Figures of the full run',
  '',
  '| Scenario | Result | Jobs | Runs | Faults injected | Lost | Duplicated | Unexpected | Checker violations | Max recovery | 5xx seen (503 of them) | Time |',
  '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ...runs.map(
    (r) =>
      `| ${r.title} | ${verdict(r)} | ${n(r.jobs)} | ${n(r.runs)} | ${faultsOf(r)} | ${r.lost} | ${r.duplicated} | ${r.unexpected} | ${r.violations} | ${secs(r.maxRecoveryMs)} | ${n(r.fivexx)} (${n(r.unavailable ?? 0)}) | ${secs(r.durationMs)} |`,
  ),
  fuzz
    ? `| Route fuzzer (scenario 7, its own figures: \`fuzz.json\`) | ${Number(fuzz.fivexx ?? 0) + Number(fuzz.hangs ?? 0) === 0 ? 'passed' : '**failed**'} | — | — | ${n(Number(fuzz.cases ?? 0))} cases tried over ${fuzz.routes ?? '?'} routes; ${n(Number(fuzz.hangs ?? 0))} hangs | — | — | — | — | — | ${n(Number(fuzz.fivexx ?? 0))} | ${fuzz.duration_s ? secs(Number(fuzz.duration_s) * 1000) : '—'} |`
    : '| Route fuzzer (scenario 7) | | **TO FILL (lead): cases tried from bench/results/reliability/fuzz.json** | | | | | | | | **TO FILL: 5xx** | |',
  '',
  `Totals: ${secs(runs.reduce((s, r) => s + r.durationMs, 0))} of scenarios, ${n(runs.reduce((s, r) => s + r.jobs, 0))} jobs, ${n(runs.reduce((s, r) => s + Object.values(r.faults).reduce((a, b) => a + b, 0), 0))} faults injected, ${runs.reduce((s, r) => s + r.lost, 0)} lost, ${runs.reduce((s, r) => s + r.duplicated, 0)} duplicated, maximum recovery ${secs(Math.max(0, ...runs.map((r) => r.maxRecoveryMs ?? 0)))}.`,
  '',
  '"Max recovery" is measured per scenario as its row says below; "5xx seen" counts answers in',
  'the 5xx range, as the clients saw them or the server logged them, whichever is more; in',
  'brackets the 503s among them (`database unavailable`, the answer during a Postgres outage).',
  '',
  '## What each scenario proves',
  '',
]
for (const r of runs) {
  const key = r.scenario.slice(0, 2)
  lines.push(`### ${r.title}`, '', SCENARIO_TEXT[key] ?? '', '')
  lines.push(
    `- Outcome: ${Object.entries(r.byStatus)
      .map(([s, c]) => `${n(c)} ${s}`)
      .join(
        ', ',
      )}; handlers run more than once for ${n(r.rerun)} jobs (at-least-once at work); ${n(r.refusedCompletes)} completes refused with 409; ${n(r.noAnswer)} requests got no answer (connection refused or reset).`,
  )
  lines.push(
    r.maxRecoveryMs === null
      ? `- Recovery: ${r.recovery}.`
      : `- Recovery: ${r.recovery}: ${secs(r.maxRecoveryMs)} at most.`,
  )
  if (r.extra) lines.push(`- Scenario figures: \`${JSON.stringify(r.extra)}\``)
  lines.push('')
}
const s6 = runs.find((r) => r.scenario.startsWith('s6'))
const maxResume = (s6?.extra as { maxResumeMs?: number } | undefined)?.maxResumeMs
lines.push(HOW_IT_WORKS, '', FINDINGS.replace('{MAX_RESUME}', maxResume === undefined ? '—' : `${maxResume} ms`), '')
writeFileSync(DOC, lines.join('\n'))
console.log(`wrote ${DOC} from ${runs.length} scenario files${fuzz ? ' and fuzz.json' : ''}`)
