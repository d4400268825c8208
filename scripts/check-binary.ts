/**
 * Boot check of the compiled binary (`bun scripts/check-binary.ts [dist/foreman]`),
 * run by .ci/run after `npm run build`: starts it in an empty temporary working
 * folder with no DATABASE_* set, so it starts its own embedded Postgres (found in
 * the node_modules above the binary); waits for "listening", expects ping and
 * readyz to answer 200, Swagger UI to load with its files and the console page and
 * its script (baked in at build time) to load, sends SIGTERM and expects exit
 * code 0, its Postgres stopped, and the cluster's random password kept mode 0600
 * in its data folder.
 */
import { existsSync, statSync } from 'node:fs'
import { chmod, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'

const binary = resolve(process.argv[2] ?? 'dist/foreman')
const workDir = await mkdtemp(join(tmpdir(), 'foreman-boot-'))
// As root, the embedded Postgres runs as the `postgres` user, which must be able to enter here.
await chmod(workDir, 0o755)

const env: Record<string, string> = {}
for (const [key, value] of Object.entries(process.env)) {
  if (value !== undefined && !key.startsWith('DATABASE_') && !key.startsWith('FOREMAN_')) env[key] = value
}
// In a clone the `postgres` user cannot enter (under /root), the binary runs a
// copy of the server executables from here rather than from /var/lib/foreman.
env.FOREMAN_EMBEDDED_RELOCATION_DIR = join(workDir, 'relocated')
const child = Bun.spawn([binary], { cwd: workDir, env: { ...env, PORT: '0' }, stdout: 'pipe', stderr: 'inherit' })

let output = ''
const decoder = new TextDecoder()
const reader = child.stdout.getReader()
const listening = (async () => {
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return undefined
    output += decoder.decode(value)
    const port = output.match(/listening on :(\d+)/)?.[1]
    if (port) return port
  }
})()
const port = await Promise.race([listening, Bun.sleep(60_000).then(() => undefined)])
// Keep draining stdout so the child never blocks on a full pipe.
const drained = (async () => {
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    output += decoder.decode(value)
  }
})()

/**
 * Swagger UI from the binary alone: the page references only its own files (no
 * CDN), and each answers 200 with its bytes, embedded at build time.
 */
async function checkDocs(pageUrl: string): Promise<string[]> {
  const found: string[] = []
  const page = await fetch(pageUrl).catch((e) => String(e))
  if (typeof page === 'string' || page.status !== 200)
    return [`GET ${pageUrl}: ${typeof page === 'string' ? page : page.status}`]
  const html = await page.text()
  if (/https?:/.test(html)) found.push('the docs page references another host')
  const refs = [...html.matchAll(/\b(?:src|href)="([^"]+)"/g), ...html.matchAll(/"url":"([^"]+)"/g)].map((m) => m[1]!)
  let bytes = 0
  for (const ref of refs) {
    const url = new URL(ref, pageUrl)
    const res = await fetch(url).catch((e) => String(e))
    if (typeof res === 'string' || res.status !== 200)
      found.push(`GET ${url.pathname}: ${typeof res === 'string' ? res : res.status}`)
    else bytes += (await res.arrayBuffer()).byteLength
  }
  if (refs.length < 3)
    found.push(`the docs page references ${refs.length} files, expected the bundle, the stylesheet and the spec`)
  if (!found.length) console.log(`binary: GET /foreman/docs/ -> 200, and its ${refs.length} files (${bytes} bytes)`)
  return found
}

/** The console from the binary: the page, then the script it names (the sources are not there to build from). */
async function checkConsole(origin: string): Promise<string[]> {
  const page = await fetch(`${origin}/foreman/ui`).catch((e) => String(e))
  if (typeof page === 'string' || page.status !== 200) {
    return [`GET /foreman/ui: ${typeof page === 'string' ? page : page.status}`]
  }
  const script = (await page.text()).match(/src="(\/foreman\/ui\/assets\/app-[^"]+\.js)"/)?.[1]
  if (!script) return ['GET /foreman/ui: the page names no console script']
  const res = await fetch(`${origin}${script}`).catch((e) => String(e))
  if (typeof res === 'string' || res.status !== 200) {
    return [`GET ${script}: ${typeof res === 'string' ? res : res.status}`]
  }
  const size = (await res.text()).length
  if (size < 10_000) return [`GET ${script}: only ${size} bytes`]
  console.log(`binary: GET /foreman/ui -> 200, GET ${script} -> 200 (${size} bytes)`)
  return []
}

const problems: string[] = []
try {
  if (!port) {
    problems.push('the binary never logged "listening on :PORT"')
  } else {
    for (const path of ['ping', 'readyz']) {
      const res = await fetch(`http://127.0.0.1:${port}/foreman/${path}`).catch((e) => String(e))
      if (typeof res === 'string' || res.status !== 200) {
        problems.push(`GET /foreman/${path}: ${typeof res === 'string' ? res : `${res.status} ${await res.text()}`}`)
      } else {
        console.log(`binary: GET /foreman/${path} -> 200 ${await res.text()}`)
      }
    }
    problems.push(...(await checkDocs(`http://127.0.0.1:${port}/foreman/docs/`)))
    problems.push(...(await checkConsole(`http://127.0.0.1:${port}`)))
  }
} finally {
  child.kill('SIGTERM')
}
const code = await Promise.race([child.exited, Bun.sleep(30_000).then(() => 'timeout' as const)])
if (code === 'timeout') {
  child.kill('SIGKILL')
  problems.push('no exit within 30 s of SIGTERM')
} else {
  await drained
  if (code !== 0) problems.push(`exit code ${code} after SIGTERM`)
}
if (!output.includes('starting embedded Postgres')) problems.push('it did not start its embedded Postgres')
const dataDir = join(workDir, '.foreman', 'postgres')
if (existsSync(join(dataDir, 'postmaster.pid'))) problems.push('its Postgres is still running')
const passwordFile = join(dataDir, 'foreman-password')
if (!existsSync(passwordFile) || (statSync(passwordFile).mode & 0o777) !== 0o600) {
  problems.push(`no ${passwordFile} with mode 0600 (the random superuser password)`)
}
await rm(workDir, { recursive: true, force: true })

if (problems.length) {
  console.error(`binary boot check FAILED:\n- ${problems.join('\n- ')}\n--- output ---\n${output}`)
  process.exit(1)
}
console.log(`binary boot check passed: ${binary} (embedded Postgres, ping, readyz, docs, console, SIGTERM -> 0)`)
process.exit(0) // the race timers above would keep the process alive
