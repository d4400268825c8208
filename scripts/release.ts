/**
 * `npm run release -- X.Y.Z` (or `make release V=X.Y.Z`): cut release vX.Y.Z of
 * the repository in the working directory.
 *
 * Preflight: on branch `main`, clean tree (untracked files count), X.Y.Z a plain
 * semantic version above the current one, no tag vX.Y.Z yet. Then: bump the
 * version in package.json and package-lock.json (the version ping reports),
 * commit "Release vX.Y.Z", create the annotated tag vX.Y.Z, and push the branch
 * and the tag to `origin` when there is one (`--no-push` skips it). The CI
 * workflow picks up the tag: tests, publishes the image (:X.Y.Z, :X.Y, :X) and
 * creates the GitHub release.
 */

export {} // a module, for top-level await

const USAGE = 'usage: npm run release -- X.Y.Z [--no-push]   (or: make release V=X.Y.Z)'
const SEMVER = /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$/

function fail(message: string): never {
  console.error(`release: ${message}`)
  process.exit(1)
}

/** Runs git in the working directory; answers trimmed stdout, or fails with git's message. */
function git(args: string[], options: { allowFailure?: boolean } = {}): { ok: boolean; out: string } {
  const result = Bun.spawnSync(['git', ...args], { stdout: 'pipe', stderr: 'pipe' })
  const out = result.stdout.toString().trim()
  if (!result.success && !options.allowFailure) {
    fail(`git ${args.join(' ')} failed: ${result.stderr.toString().trim() || out}`)
  }
  return { ok: result.success, out }
}

function compare(a: string, b: string): number {
  const pa = a.split('.').map(Number)
  const pb = b.split('.').map(Number)
  for (let i = 0; i < 3; i++) if (pa[i] !== pb[i]) return (pa[i] ?? 0) - (pb[i] ?? 0)
  return 0
}

const args = process.argv.slice(2)
const push = !args.includes('--no-push')
const positional = args.filter((a) => !a.startsWith('--'))
if (positional.length !== 1 || args.some((a) => a.startsWith('--') && a !== '--no-push')) fail(USAGE)
const version = positional[0]!
if (!SEMVER.test(version)) fail(`version must look like X.Y.Z (e.g. 0.2.0), got ${JSON.stringify(version)}\n${USAGE}`)
const tag = `v${version}`

// Preflight.
const toplevel = git(['rev-parse', '--show-toplevel'], { allowFailure: true })
if (!toplevel.ok) fail('not inside a git repository')
process.chdir(toplevel.out)
const branch = git(['rev-parse', '--abbrev-ref', 'HEAD']).out
if (branch !== 'main') fail(`releases are cut from main, but this is ${JSON.stringify(branch)}`)
const dirty = git(['status', '--porcelain']).out
if (dirty) fail(`the working tree is not clean; commit or stash first:\n${dirty}`)
if (git(['rev-parse', '-q', '--verify', `refs/tags/${tag}`], { allowFailure: true }).ok)
  fail(`tag ${tag} already exists`)

const pkgText = await Bun.file('package.json').text()
const current = (JSON.parse(pkgText) as { version?: string }).version ?? '0.0.0'
if (!SEMVER.test(current)) fail(`package.json has version ${JSON.stringify(current)}, not X.Y.Z`)
if (compare(version, current) <= 0) fail(`${version} is not above the current version ${current}`)

// Bump: edit the text in place (the files keep their formatting), then check the result parses as intended.
const files = ['package.json']
const bumpedPkg = pkgText.replace(/^(\s*"version"\s*:\s*")[^"]*(")/m, `$1${version}$2`)
if ((JSON.parse(bumpedPkg) as { version: string }).version !== version)
  fail('could not set the version in package.json')
await Bun.write('package.json', bumpedPkg)

const lockFile = Bun.file('package-lock.json')
if (await lockFile.exists()) {
  const lockText = await lockFile.text()
  const bumpedLock = lockText
    .replace(/^(\s*"version"\s*:\s*")[^"]*(")/m, `$1${version}$2`)
    .replace(/("packages"\s*:\s*\{\s*""\s*:\s*\{[^{}]*?"version"\s*:\s*")[^"]*(")/, `$1${version}$2`)
  const lock = JSON.parse(bumpedLock) as { version?: string; packages?: Record<string, { version?: string }> }
  if (lock.version !== version || (lock.packages?.[''] && lock.packages['']?.version !== version)) {
    git(['checkout', '--', 'package.json'])
    fail('could not set the version in package-lock.json')
  }
  await Bun.write('package-lock.json', bumpedLock)
  files.push('package-lock.json')
}

git(['add', '--', ...files])
git(['commit', '-q', '-m', `Release ${tag}`])
git(['tag', '-a', tag, '-m', `Release ${tag}`])
console.log(`release: committed "Release ${tag}" and tagged ${tag} (${current} -> ${version})`)

const remotes = git(['remote']).out.split('\n').filter(Boolean)
if (!push) {
  console.log(`release: not pushed (--no-push). Next: git push --atomic origin main ${tag}`)
} else if (!remotes.includes('origin')) {
  console.log(`release: no "origin" remote, not pushed. Next: git push --atomic <remote> main ${tag}`)
} else {
  const pushed = Bun.spawnSync(['git', 'push', '--atomic', 'origin', 'main', tag], {
    stdout: 'inherit',
    stderr: 'inherit',
  })
  if (!pushed.success) fail(`push failed; the commit and tag are local. Retry: git push --atomic origin main ${tag}`)
  console.log(`release: pushed main and ${tag} to origin; CI now publishes the image and the GitHub release`)
}
