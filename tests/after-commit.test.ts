/**
 * afterCommit: a change's hint and counts follow its commit, and only its commit;
 * and no service publishes or counts a change any other way.
 */
import { describe, expect, test } from 'bun:test'
import { readdir, readFile } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { afterCommit, type EffectTargets } from '../src/after-commit'
import type { JobChange } from '../src/events/hub'
import { createMetrics } from '../src/metrics/registry'

/** Targets that remember what reached them. */
function targets() {
  const published: JobChange[][] = []
  const metrics = createMetrics()
  const t: EffectTargets = { events: { hub: { publish: (changes) => published.push(changes) } }, metrics }
  const heartbeats = async () => (await metrics.heartbeats.get()).values.reduce((n, v) => n + v.value, 0)
  return { t, published, heartbeats }
}

const job = { id: 'job_1', status: 'pending', kind: 'k', queue: 'q', params: { big: true } }

describe('afterCommit', () => {
  test('applies what the work gathered once it resolves: one publish of the hints, then the counts', async () => {
    const { t, published, heartbeats } = targets()
    const value = await afterCommit(t, async (effects) => {
      effects.announce([job])
      effects.count((m) => m.heartbeats.inc({ kind: 'k' }))
      effects.announce([{ ...job, id: 'job_2' }])
      // Nothing reaches the hub or the counters while the work runs.
      expect(published).toEqual([])
      expect(await heartbeats()).toBe(0)
      return 42
    })
    expect(value).toBe(42)
    // Only the hint's fields go out, not the whole job.
    expect(published).toEqual([
      [
        { id: 'job_1', status: 'pending', kind: 'k', queue: 'q' },
        { id: 'job_2', status: 'pending', kind: 'k', queue: 'q' },
      ],
    ])
    expect(await heartbeats()).toBe(1)
  })

  test('work that throws (a rolled-back transaction) applies nothing and rethrows', async () => {
    const { t, published, heartbeats } = targets()
    const work = afterCommit(t, async (effects) => {
      effects.announce([job])
      effects.count((m) => m.heartbeats.inc({ kind: 'k' }))
      throw new Error('rolled back')
    })
    await expect(work).rejects.toThrow('rolled back')
    expect(published).toEqual([])
    expect(await heartbeats()).toBe(0)
  })
})

/** Every .ts file under src, as [path relative to src, text]. */
async function sources(dir = join(import.meta.dir, '../src')): Promise<[string, string][]> {
  const root = join(import.meta.dir, '../src')
  const out: [string, string][] = []
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) out.push(...(await sources(path)))
    else if (entry.name.endsWith('.ts')) out.push([relative(root, path), await readFile(path, 'utf8')])
  }
  return out
}

describe('one home for after-commit effects', () => {
  test('only afterCommit publishes job changes on the hub', async () => {
    const publishers = (await sources())
      .filter(([path, text]) => path !== 'events/hub.ts' && path !== 'after-commit.ts' && /\.publish\(/.test(text))
      .map(([path]) => path)
    expect(publishers).toEqual([])
  })

  test('the per-change counters are counted through afterCommit only', async () => {
    // Effects hand the counters to their callbacks as `m`; a service touching
    // `metrics` (or `deps.metrics`) for one of these counts outside afterCommit.
    const direct =
      /\bmetrics\.(jobsEnqueued|jobsClaimed|jobsTerminal|runsTerminal|heartbeats|schedulesFired|reaperReaped|retentionDeleted|jobLifetime|runDuration|claimWait)\b|record(Enqueued|Claimed|JobTerminal|RunEnded|Heartbeat)\((deps\.)?metrics\b/
    const counting = (await sources())
      .filter(([path, text]) => !path.startsWith('metrics/') && direct.test(text))
      .map(([path]) => path)
    expect(counting).toEqual([])
  })
})
