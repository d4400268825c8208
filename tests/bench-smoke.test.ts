/**
 * The reduced benchmarks inside `npm test`: the side-by-side harness in quick mode
 * for Foreman and the raw-SQL floor (the peers need bench/node_modules and run in
 * `npm run bench:peers`). Figures here mean nothing; what is checked is that every
 * scenario runs end to end against a real server process and reports numbers.
 * The backlog benchmark's reduced form is tests/hot-plans.test.ts.
 */
import { expect, test } from 'bun:test'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

interface Result {
  system: string
  scenario: string
  status: string
  jobs_per_sec?: number
  p50_ms?: number
}

test('bench:peers --quick runs every Foreman scenario and the floor, with numbers for each', async () => {
  const out = await mkdtemp(join(tmpdir(), 'foreman-bench-smoke-'))
  try {
    const child = Bun.spawn(
      [process.execPath, 'bench/peers/run.ts', '--quick', '--only', 'foreman,floor', '--out', out],
      { cwd: join(import.meta.dir, '..'), stdout: 'pipe', stderr: 'pipe', env: process.env },
    )
    const [code, stderr] = await Promise.all([child.exited, new Response(child.stderr).text()])
    expect({ code, stderr: code === 0 ? '' : stderr }).toEqual({ code: 0, stderr: '' })
    const report = JSON.parse(await readFile(join(out, 'peers-quick.json'), 'utf8')) as { results: Result[] }
    const foreman = report.results.filter((r) => r.system === 'foreman')
    const scenarios = ['enqueue_single', 'enqueue_bulk', 'process_single', 'process_batched', 'latency']
    for (const scenario of scenarios) {
      const ran = foreman.filter((r) => r.scenario === scenario)
      expect(ran.length).toBeGreaterThan(0)
      for (const r of ran) {
        expect(r.status).toBe('ok')
        expect((r.jobs_per_sec ?? 0) + (r.p50_ms ?? 0)).toBeGreaterThan(0)
      }
    }
    expect(report.results.some((r) => r.system === 'floor' && r.status === 'ok')).toBe(true)
  } finally {
    await rm(out, { recursive: true, force: true })
  }
}, 180_000)
