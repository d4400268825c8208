/**
 * The release script (`npm run release -- X.Y.Z`, `make release V=X.Y.Z`) in a
 * throw-away git repository holding Foreman's package files: it refuses a bad
 * version, a dirty tree, a branch other than main and a version that does not
 * go up; on a clean main it bumps the version (the one ping reports), commits,
 * tags and pushes to origin.
 */
import { afterAll, beforeEach, describe, expect, test } from 'bun:test'
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const ROOT = resolve(import.meta.dir, '..')
const SCRIPT = join(ROOT, 'scripts', 'release.ts')
const base = await mkdtemp(join(tmpdir(), 'foreman-release-'))
afterAll(() => rm(base, { recursive: true, force: true }))

const GIT_ENV = {
  ...process.env,
  GIT_AUTHOR_NAME: 'Release Test',
  GIT_AUTHOR_EMAIL: 'release@test.invalid',
  GIT_COMMITTER_NAME: 'Release Test',
  GIT_COMMITTER_EMAIL: 'release@test.invalid',
  GIT_CONFIG_GLOBAL: '/dev/null',
  GIT_CONFIG_NOSYSTEM: '1',
}

function run(cmd: string[], cwd: string) {
  const result = Bun.spawnSync(cmd, { cwd, env: GIT_ENV, stdout: 'pipe', stderr: 'pipe' })
  return { code: result.exitCode, out: result.stdout.toString().trim(), err: result.stderr.toString().trim() }
}

function git(cwd: string, ...args: string[]): string {
  const result = run(['git', ...args], cwd)
  if (result.code !== 0) throw new Error(`git ${args.join(' ')}: ${result.err}`)
  return result.out
}

const release = (cwd: string, ...args: string[]) => run([process.execPath, SCRIPT, ...args], cwd)

let counter = 0
let repo: string

/** A fresh repository on main with Foreman's package.json, lock file and version module at 0.1.0. */
beforeEach(async () => {
  repo = join(base, `repo-${counter++}`)
  await mkdir(join(repo, 'src'), { recursive: true })
  const pkg = (await Bun.file(join(ROOT, 'package.json')).json()) as Record<string, unknown>
  await writeFile(join(repo, 'package.json'), `${JSON.stringify({ ...pkg, version: '0.1.0' }, null, 2)}\n`)
  const lock = (await Bun.file(join(ROOT, 'package-lock.json')).json()) as any
  lock.version = '0.1.0'
  lock.packages[''].version = '0.1.0'
  await writeFile(join(repo, 'package-lock.json'), `${JSON.stringify(lock, null, 2)}\n`)
  await copyFile(join(ROOT, 'src', 'version.ts'), join(repo, 'src', 'version.ts'))
  git(repo, 'init', '-q', '-b', 'main')
  git(repo, 'add', '.')
  git(repo, 'commit', '-q', '-m', 'initial')
})

const headCommit = () => git(repo, 'rev-parse', 'HEAD')
const versionOf = async (file: string) => ((await Bun.file(join(repo, file)).json()) as { version: string }).version

describe('release', () => {
  test('on a clean main: bumps package.json and the lock file, commits "Release vX.Y.Z", tags vX.Y.Z', async () => {
    const before = headCommit()
    const result = release(repo, '0.2.0')
    expect(result.code, result.err).toBe(0)
    expect(await versionOf('package.json')).toBe('0.2.0')
    const lock = (await Bun.file(join(repo, 'package-lock.json')).json()) as any
    expect(lock.version).toBe('0.2.0')
    expect(lock.packages[''].version).toBe('0.2.0')
    // The version ping reports comes from package.json.
    const reported = run([process.execPath, '-e', 'console.log((await import("./src/version.ts")).VERSION)'], repo)
    expect(reported.out).toBe('0.2.0')

    expect(git(repo, 'log', '-1', '--format=%s')).toBe('Release v0.2.0')
    expect(git(repo, 'rev-parse', 'HEAD~1')).toBe(before)
    expect(git(repo, 'diff', '--name-only', 'HEAD~1', 'HEAD').split('\n').sort()).toEqual([
      'package-lock.json',
      'package.json',
    ])
    expect(git(repo, 'cat-file', '-t', 'v0.2.0')).toBe('tag') // annotated
    expect(git(repo, 'rev-parse', 'v0.2.0^{commit}')).toBe(headCommit())
    expect(git(repo, 'status', '--porcelain')).toBe('')
    // Only the version line changed: formatting is kept.
    expect(git(repo, 'diff', '--numstat', 'HEAD~1', 'HEAD', '--', 'package.json')).toMatch(/^1\t1\t/)

    // The same version again, or a lower one, is refused.
    expect(release(repo, '0.2.0').code).not.toBe(0)
    expect(release(repo, '0.1.5').code).not.toBe(0)
    expect(release(repo, '0.10.0').code).toBe(0)
    expect(git(repo, 'tag', '--list').split('\n')).toEqual(['v0.10.0', 'v0.2.0'])
  })

  test('pushes main and the tag to origin when there is one', async () => {
    const remote = join(base, `remote-${counter}.git`)
    git(base, 'init', '-q', '--bare', remote)
    git(repo, 'remote', 'add', 'origin', remote)
    git(repo, 'push', '-q', 'origin', 'main')
    const result = release(repo, '1.0.0')
    expect(result.code, result.err).toBe(0)
    expect(git(remote, 'rev-parse', 'refs/tags/v1.0.0^{commit}')).toBe(headCommit())
    expect(git(remote, 'rev-parse', 'refs/heads/main')).toBe(headCommit())
  })

  const refusals: [string, () => Promise<void> | void, string[], RegExp][] = [
    [
      'a dirty tree (modified file)',
      () => writeFile(join(repo, 'src', 'version.ts'), '// edited\n'),
      ['0.2.0'],
      /clean/,
    ],
    ['a dirty tree (untracked file)', () => writeFile(join(repo, 'notes.txt'), 'x\n'), ['0.2.0'], /clean/],
    ['a branch other than main', () => void git(repo, 'checkout', '-q', '-b', 'feature'), ['0.2.0'], /main/],
    ['a version that is not X.Y.Z', () => {}, ['0.2'], /X\.Y\.Z/],
    ['a v-prefixed version', () => {}, ['v0.2.0'], /X\.Y\.Z/],
    ['a pre-release version', () => {}, ['0.2.0-rc.1'], /X\.Y\.Z/],
    ['no version at all', () => {}, [], /usage/],
    ['the current version', () => {}, ['0.1.0'], /not above/],
    ['an existing tag', () => void git(repo, 'tag', 'v0.3.0'), ['0.3.0'], /already exists/],
  ]
  for (const [what, arrange, args, message] of refusals) {
    test(`refuses ${what}, changing nothing`, async () => {
      await arrange()
      const head = headCommit()
      const tags = git(repo, 'tag', '--list')
      const status = git(repo, 'status', '--porcelain')
      const result = release(repo, ...args)
      expect(result.code).not.toBe(0)
      expect(result.err).toMatch(message)
      expect(headCommit()).toBe(head)
      expect(git(repo, 'tag', '--list')).toBe(tags)
      expect(git(repo, 'status', '--porcelain')).toBe(status)
      expect(await versionOf('package.json')).toBe('0.1.0')
    })
  }
})
