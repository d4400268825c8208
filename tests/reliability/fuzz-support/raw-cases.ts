/**
 * The raw TCP cases, judged by the same oracle as the generated ones. Cases whose
 * framing is broken below HTTP (two lengths, a bad chunk size) are refused by Bun's
 * parser before the app sees them: for those any 4xx or a close will do, but never
 * a 5xx, a hang, or a change to the data.
 */
import { POOL_KIND } from './gen-valid'
import { chunked, exchange, head, type RawPlan } from './raw-tcp'
import type { Fuzzer } from './runner'
import type { Outcome } from './send'
import type { Target } from './server'

/** A named raw case against one path. */
export interface RawCase {
  name: string
  path: string
  plan: RawPlan
  /** Refused by the HTTP layer: no JSON required. */
  httpLayer?: boolean
}

const enc = new TextEncoder()
const MB = 1024 * 1024
const TIMEOUT = 15_000

/** A JSON body `{"kind":…,"params":"aaaa…"}` of about `bytes` bytes. */
function bigBody(bytes: number): Uint8Array {
  const prefix = `{"kind":"${POOL_KIND}-raw","params":"`
  return enc.encode(`${prefix}${'a'.repeat(Math.max(0, bytes - prefix.length - 2))}"}`)
}

const json = (path: string, headers: string[]) => head('POST', path, ['Content-Type: application/json', ...headers])

/** The cases for one body-taking path. */
function casesFor(path: string): RawCase[] {
  const small = enc.encode(`{"kind":"${POOL_KIND}-raw","worker_id":"w","kinds":["${POOL_KIND}-raw"]}`)
  const twenty = bigBody(20 * MB)
  const two = bigBody(2 * MB)
  const c = (name: string, parts: Uint8Array[], extra: Partial<RawCase & RawPlan> = {}): RawCase => ({
    name,
    path,
    httpLayer: extra.httpLayer,
    plan: {
      parts,
      timeoutMs: extra.expectSilence ? 2000 : TIMEOUT,
      pauseMs: extra.pauseMs,
      expectSilence: extra.expectSilence,
    },
  })
  const te = json(path, ['Transfer-Encoding: chunked'])
  return [
    c('chunked in 1-byte chunks', [te, ...chunked(small, 1)]),
    c('chunked with chunk extensions', [te, ...chunked(small, 7, { extension: ';ext=1' })]),
    c('chunked, slow (100 ms between parts)', [te, ...chunked(small, 16)], { pauseMs: 100 }),
    c('chunked, 2 MB (over the 1 MB limit)', [te, ...chunked(two, 64 * 1024)]),
    c('chunked, 20 MB', [te, ...chunked(twenty, 64 * 1024)]),
    c('chunked, cut off (no last chunk), then silence', [te, ...chunked(small, 8, { cut: true })], {
      expectSilence: true,
    }),
    c('Content-Length 2 MB with the body', [json(path, [`Content-Length: ${two.length}`]), two]),
    c('Content-Length 20 MB with the body', [json(path, [`Content-Length: ${twenty.length}`]), twenty]),
    c('Content-Length 20 MB, headers only', [json(path, [`Content-Length: ${twenty.length}`])]),
    c('Content-Length 20 MB with Expect: 100-continue', [
      json(path, [`Content-Length: ${twenty.length}`, 'Expect: 100-continue']),
    ]),
    c('Content-Length shorter than the body', [json(path, [`Content-Length: ${small.length - 5}`]), small]),
    c(
      'Content-Length longer than the body, then silence',
      [json(path, [`Content-Length: ${small.length + 50}`]), small],
      {
        expectSilence: true,
      },
    ),
    c('Content-Length 0 with a body', [json(path, ['Content-Length: 0']), small]),
    c(
      'Content-Length and Transfer-Encoding both',
      [json(path, [`Content-Length: 3`, 'Transfer-Encoding: chunked']), ...chunked(small, 10)],
      {
        httpLayer: true,
      },
    ),
    c('chunk size that is not hex', [te, enc.encode('zz\r\nabc\r\n0\r\n\r\n')], { httpLayer: true }),
    c('chunk size larger than the chunk', [te, enc.encode('ffff\r\n{}\r\n0\r\n\r\n')], {
      httpLayer: true,
      expectSilence: true,
    }),
    c('Content-Length not a number', [json(path, ['Content-Length: abc']), small], { httpLayer: true }),
    c('Content-Length negative', [json(path, ['Content-Length: -1']), small], { httpLayer: true }),
    c('two different Content-Lengths', [json(path, ['Content-Length: 5', `Content-Length: ${small.length}`]), small], {
      httpLayer: true,
    }),
  ]
}

/** Raw cases: reduced mode on POST /foreman/jobs only, full mode on a few body-taking paths. */
export function rawCases(full: boolean): RawCase[] {
  const paths = full
    ? ['/foreman/jobs', '/foreman/claim', '/foreman/runs/complete', '/foreman/schedules', '/foreman/jobs/batch']
    : ['/foreman/jobs']
  const longLine: RawCase = {
    name: 'request line of 20 KB (Bun refuses it before the app)',
    path: '/foreman/jobs',
    httpLayer: true,
    plan: { parts: [head('GET', `/foreman/jobs?kind=${'k'.repeat(20_000)}`, [])], timeoutMs: TIMEOUT },
  }
  return [...paths.flatMap(casesFor), longLine]
}

/** Sends one raw case, checks the server still answers, and judges it. */
export async function runRawCase(target: Target, fuzzer: Fuzzer, raw: RawCase): Promise<void> {
  const started = performance.now()
  const answer = await exchange(target.port, raw.plan)
  const ms = performance.now() - started
  // The server must still serve others, whatever this connection did.
  const alive = await fetch(`${target.base}/ping`, { signal: AbortSignal.timeout(TIMEOUT) }).then(
    (r) => r.ok,
    () => false,
  )
  const silentAsExpected = raw.plan.expectSilence && answer.status === null && answer.timedOut
  let outcome: Outcome
  if (!alive) outcome = { status: 0, contentType: '', text: '', hung: true, ms }
  else if (answer.status !== null) {
    outcome = { status: answer.status, contentType: answer.contentType, text: answer.text, hung: false, ms }
  } else if (silentAsExpected) {
    outcome = { status: 0, contentType: '', text: '', hung: false, failure: 'client gave up (expected)', ms }
  } else if (answer.timedOut) outcome = { status: 0, contentType: '', text: '', hung: true, ms }
  else outcome = { status: 0, contentType: '', text: '', hung: false, failure: 'closed without an answer', ms }
  const first = new TextDecoder().decode(raw.plan.parts[0]).split('\r\n')[0] ?? ''
  await fuzzer.check(
    {
      route: `RAW ${first.replace(/ HTTP\/1\.1$/, '').replace(/\?.*/, '')}`,
      label: `raw: ${raw.name}`,
      method: 'POST',
      url: raw.path,
      body: '',
      replay: `raw case "${raw.name}" on ${raw.path}`,
    },
    outcome,
    raw.httpLayer || silentAsExpected,
  )
}
