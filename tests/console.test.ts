/**
 * The operator console in a real headless browser (Debian's Chromium through
 * playwright-core) against a real server on a free port: live updates without a
 * reload, progress that moves with heartbeats, actions from the UI seen through
 * the API, and the token prompt. One browser for the file; screenshots of every
 * page go to a temp folder (FOREMAN_SCREENSHOT_DIR); FOREMAN_UPDATE_SCREENSHOT=1
 * also rewrites docs/console-overview.png from a seeded, realistic Foreman.
 */
import { afterAll, describe, expect, test } from 'bun:test'
import { resolve } from 'node:path'
import type { Browser, Page } from 'playwright-core'
import { launchBrowser, pageErrors, screenshot } from './support/browser'
import { seedRealisticActivity } from './support/console-seed'
import { uniqueKind } from './support/factories'
import { type Fixture, startFixture } from './support/harness'
import { TcpProxy } from './support/tcp-proxy'

// No safety poll: what the console shows comes from notifications and replays alone.
const f = await startFixture({ eventsPollSec: 3600 })
const base = f.serve()
const browser: Browser = await launchBrowser()
afterAll(() => browser.close())

/** A fresh tab (own session storage) on a console path, once its live stream is up. */
async function open(path: string, origin = base): Promise<{ page: Page; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } })
  page.setDefaultTimeout(10_000)
  const errors = pageErrors(page)
  await page.goto(`${origin}/ui${path}`)
  await page.locator('[data-testid=connection][data-state=live]').waitFor()
  return { page, errors }
}

/** Waits until `check` holds (an API read after a UI action lands); fails with `what` after 10 s. */
async function until(what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 10_000
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`still not true after 10 s: ${what}`)
    await Bun.sleep(50)
  }
}

async function enqueue(fixture: Fixture, body: Record<string, unknown>) {
  const res = await fixture.call('POST', '/jobs', body)
  expect(res.status).toBe(201)
  return res.body
}

describe('the console', () => {
  test('serves the page at /ui, /ui/ and deep links, and hashed assets cached for good', async () => {
    for (const path of ['/ui', '/ui/', '/ui/jobs/job_01ABCDEFGHJKMNPQRSTVWXYZ00']) {
      const res = await fetch(`${base}${path}`)
      expect(res.status).toBe(200)
      expect(res.headers.get('cache-control')).toBe('no-cache')
      expect(await res.text()).toContain('<div id="app"></div>')
    }
    const html = await (await fetch(`${base}/ui`)).text()
    const script = html.match(/src="([^"]+\.js)"/)?.[1] ?? ''
    const res = await fetch(new URL(script, base), { headers: { 'accept-encoding': 'gzip' } })
    expect(res.status).toBe(200)
    expect(res.headers.get('cache-control')).toContain('immutable')
    expect(res.headers.get('content-type')).toContain('javascript')
    expect((await fetch(`${base}/ui/assets/app-stale.js`)).status).toBe(404)
  })

  test('opens on the overview, live, with no errors in the page', async () => {
    await enqueue(f, { kind: uniqueKind('overview'), queue: 'console-overview' })
    const { page, errors } = await open('/')
    await page.locator('[data-testid=overview-queue][data-queue=console-overview]').waitFor()
    await page.getByTestId('throughput-chart').waitFor()
    await page.getByTestId('db-health').waitFor()
    await screenshot(page, 'overview')
    expect(errors).toEqual([])
    await page.close()
  })

  test('a job enqueued through the API appears in the jobs table without a reload', async () => {
    const kind = uniqueKind('appear')
    const { page } = await open(`/jobs?kind=${kind}`)
    await page.getByText('No jobs match.').waitFor()
    const job = await enqueue(f, { kind, params: { customer: 42 } })
    await page.locator(`[data-testid=job-row][data-id=${job.id}][data-status=pending]`).waitFor()
    await screenshot(page, 'jobs')
    await page.close()
  })

  test('a lost connection is shown, and the stream resumes with what changed meanwhile', async () => {
    const kind = uniqueKind('resume')
    const proxy = new TcpProxy('127.0.0.1', Number(new URL(base).port))
    proxy.start()
    try {
      const { page } = await open(`/jobs?kind=${kind}`, `http://127.0.0.1:${proxy.port}/foreman`)
      await page.getByText('No jobs match.').waitFor()
      proxy.stop()
      await page.getByTestId('connection-lost').waitFor()
      const job = await enqueue(f, { kind })
      proxy.start()
      await page.locator(`[data-testid=job-row][data-id=${job.id}]`).waitFor()
      await page.locator('[data-testid=connection][data-state=live]').waitFor()
      await page.close()
    } finally {
      proxy.stop()
    }
  })

  test('a tab hidden for a while closes its stream, and resumes with what changed when shown again', async () => {
    const kind = uniqueKind('hidden')
    const page = await browser.newPage()
    page.setDefaultTimeout(10_000)
    // A fake clock that flows on its own, so the test can skip the hidden grace period.
    await page.clock.install()
    await page.goto(`${base}/ui/jobs?kind=${kind}`)
    await page.locator('[data-testid=connection][data-state=live]').waitFor()
    const openBefore = f.deps.events.streams.open
    const setVisibility = (state: 'hidden' | 'visible') =>
      page.evaluate((state) => {
        Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => state })
        document.dispatchEvent(new Event('visibilitychange'))
      }, state)
    await setVisibility('hidden')
    await page.clock.runFor(11_000)
    await page.locator('[data-testid=connection][data-state=paused]').waitFor()
    await until('the server sees the stream closed', async () => f.deps.events.streams.open < openBefore)
    const job = await enqueue(f, { kind })
    await setVisibility('visible')
    await page.locator('[data-testid=connection][data-state=live]').waitFor()
    await page.locator(`[data-testid=job-row][data-id=${job.id}]`).waitFor()
    await page.close()
  })

  test("a claimed job's progress bar moves as heartbeats arrive", async () => {
    const kind = uniqueKind('progress')
    const job = await enqueue(f, { kind, params: { rows: 10 } })
    const { page, errors } = await open(`/jobs/${job.id}`)
    const claimed = await f.call('POST', '/claim', { kinds: [kind], worker_id: 'console-worker' })
    expect(claimed.status).toBe(200)
    await page.locator('[data-testid=job-status]', { hasText: 'active' }).waitFor()
    for (const done of [2, 7]) {
      const beat = { worker_id: 'console-worker', progress_current: done, progress_total: 10 }
      expect((await f.call('POST', `/runs/${claimed.body.run.id}/heartbeat`, beat)).status).toBe(200)
      await page.locator(`[data-testid=progress][aria-valuenow="${done}"]`).waitFor()
    }
    await screenshot(page, 'job')
    expect(errors).toEqual([])
    await page.close()
  })

  test('cancel from the job page: the API then answers cancelled; retry, copy and delete from there too', async () => {
    const job = await enqueue(f, { kind: uniqueKind('cancel'), params: { invoice: 7 } })
    const status = async (id: string) => (await f.call('GET', `/jobs/${id}`)).body?.status
    const { page, errors } = await open(`/jobs/${job.id}`)
    await page.getByTestId('job-cancel').click()
    await until('the job is cancelled', async () => (await status(job.id)) === 'cancelled')
    await page.locator('[data-testid=job-status]', { hasText: 'cancelled' }).waitFor()
    await page.getByTestId('job-retry').click()
    await until('the job is pending again', async () => (await status(job.id)) === 'pending')
    await page.getByTestId('job-copy').click()
    await page.locator(`[data-testid=page-job]:not([data-id="${job.id}"])`).waitFor()
    const copyId = await page.getByTestId('page-job').getAttribute('data-id')
    const copy = (await f.call('GET', `/jobs/${copyId}`)).body
    expect(copy).toMatchObject({ kind: job.kind, params: { invoice: 7 }, status: 'pending' })
    await page.goBack()
    await page.getByTestId('job-cancel').click()
    await page.getByTestId('job-delete').click()
    await page.getByTestId('confirm-ok').click()
    await until('the job is gone', async () => (await f.call('GET', `/jobs/${job.id}`)).status === 404)
    await page.getByTestId('page-jobs').waitFor()
    expect(errors).toEqual([])
    await page.close()
  })

  test('waiting is a status filter; a job page shows its expiry and run timeout', async () => {
    const kind = uniqueKind('lifecycle')
    const job = await enqueue(f, { kind, expires_in_seconds: 3600, timeout_seconds: 90 })
    const { page, errors } = await open(`/jobs?status=waiting&kind=${kind}`)
    const filter = page.getByTestId('filter-status')
    expect(await filter.locator('option').allTextContents()).toEqual([
      'any',
      'waiting',
      'pending',
      'active',
      'succeeded',
      'failed',
      'cancelled',
    ])
    expect(await filter.inputValue()).toBe('waiting')
    // The job is pending, not waiting: the filter reaches the API (a row would show within a render).
    await page.getByText('No jobs match.').waitFor()
    await Bun.sleep(300)
    expect(await page.getByTestId('job-row').count()).toBe(0)
    await page.goto(`${base}/ui/jobs/${job.id}`)
    expect(await page.getByTestId('job-timeout').textContent()).toBe('1m 30s')
    expect(await page.getByTestId('job-expires').textContent()).toMatch(/^in 59m/)
    expect(await page.getByTestId('job-dependencies').count()).toBe(0)
    expect(errors).toEqual([])
    await page.close()
  })

  test('pause a queue in the UI: a claim skips it; resume: the claim gets the job', async () => {
    const kind = uniqueKind('paused')
    const queue = uniqueKind('q')
    const job = await enqueue(f, { kind, queue })
    const { page } = await open('/queues')
    const row = page.locator(`[data-testid=queue-row][data-queue="${queue}"]`)
    await row.getByTestId('queue-toggle').click()
    await page.locator(`[data-testid=queue-row][data-queue="${queue}"][data-paused=true]`).waitFor()
    await screenshot(page, 'queues')
    expect((await f.call('POST', '/claim', { kinds: [kind], worker_id: 'console-worker' })).status).toBe(204)
    await row.getByTestId('queue-toggle').click()
    await page.locator(`[data-testid=queue-row][data-queue="${queue}"][data-paused=false]`).waitFor()
    const claimed = await f.call('POST', '/claim', { kinds: [kind], worker_id: 'console-worker' })
    expect(claimed.body.job.id).toBe(job.id)
    await page.close()
  })

  test('bulk retry of 50 failed jobs: the confirmation counts them, then all are pending', async () => {
    const kind = uniqueKind('bulk')
    const jobs = Array.from({ length: 50 }, (_, i) => ({ kind, params: { n: i } }))
    expect((await f.call('POST', '/jobs/batch', { jobs })).status).toBe(200)
    const claimed = await f.call('POST', '/claims', { kinds: [kind], worker_id: 'console-worker', max_jobs: 50 })
    expect(claimed.body.length).toBe(50)
    for (const { run } of claimed.body) {
      await f.call('POST', `/runs/${run.id}/fail`, { worker_id: 'console-worker', error: 'smtp timeout' })
    }
    const { page, errors } = await open(`/jobs?kind=${kind}&status=failed`)
    await until('50 failed rows', async () => (await page.getByTestId('job-row').count()) === 50)
    // Three selected failed jobs cannot be cancelled: the dry run says so and nothing is asked.
    for (const box of (await page.getByTestId('row-select').all()).slice(0, 3)) await box.check()
    await page.getByTestId('bulk-cancel').getByText('Cancel 3 selected').click()
    await page.getByTestId('bulk-result').getByText('nothing to cancel').waitFor()
    await page.getByTestId('select-all').check()
    await page.getByTestId('select-all').uncheck()
    await page.getByTestId('bulk-retry').getByText('Retry all matching').click()
    expect(await page.getByTestId('confirm-count').textContent()).toBe('50')
    await page.getByTestId('confirm-ok').click()
    await page.getByTestId('bulk-result').getByText('Retried 50 jobs.').waitFor()
    expect(errors).toEqual([])
    const pending = await f.call('GET', `/jobs?kind=${kind}&status=pending&limit=100`)
    expect(pending.body.length).toBe(50)
    await page.close()
  })

  test('workers and schedules pages, with a cron preview in the schedule time zone', async () => {
    const schedule = { kind: uniqueKind('nightly'), cron_expr: '30 2 * * *', timezone: 'Europe/Berlin' }
    expect((await f.call('POST', '/schedules', schedule)).status).toBe(201)
    const workers = await open('/workers')
    await workers.page.getByTestId('page-workers').waitFor()
    await screenshot(workers.page, 'workers')
    await workers.page.close()
    const { page, errors } = await open('/schedules')
    await page.locator('[data-testid=schedule-row]').first().waitFor()
    await page.getByTestId('schedule-new').click()
    await page.getByTestId('schedule-cron').fill('0 9 * * 1-5')
    await page.getByTestId('schedule-timezone').fill('America/New_York')
    await until('5 fire times', async () => (await page.locator('[data-testid=cron-preview] li').count()) === 5)
    expect(await page.locator('[data-testid=cron-preview] li').first().textContent()).toMatch(/9:00:00/)
    await page.getByTestId('schedule-cron').fill('61 * * * *')
    await page.locator('[data-testid=cron-preview] .error-note').waitFor()
    await screenshot(page, 'schedules')
    expect([...workers.errors, ...errors]).toEqual([])
    await page.close()
  })

  test('with FOREMAN_API_TOKENS the console asks for a token, and asks again when it is refused', async () => {
    const guarded = await startFixture({ apiTokens: ['console-secret'] })
    const origin = guarded.serve()
    // The page and its assets are open; the API, and paths that only start like the console's, are not.
    const html = await fetch(`${origin}/ui/jobs`)
    expect(html.status).toBe(200)
    const script = (await html.text()).match(/src="([^"]+\.js)"/)?.[1] ?? ''
    expect((await fetch(new URL(script, origin))).status).toBe(200)
    expect((await fetch(`${origin}/uix`)).status).toBe(401)
    expect((await fetch(`${origin}/jobs`)).status).toBe(401)
    const page = await browser.newPage()
    page.setDefaultTimeout(10_000)
    await page.goto(`${origin}/ui`)
    await page.getByTestId('token-form').waitFor()
    await screenshot(page, 'token')
    await page.getByTestId('token-input').fill('wrong')
    await page.getByTestId('token-submit').click()
    await page.getByTestId('token-message').getByText('not accepted').waitFor()
    await page.getByTestId('token-input').fill('console-secret')
    await page.getByTestId('token-submit').click()
    await page.locator('[data-testid=connection][data-state=live]').waitFor()
    await page.getByTestId('page-overview').waitFor()
    await page.reload()
    await page.locator('[data-testid=connection][data-state=live]').waitFor()
    expect(await page.getByTestId('token-form').count()).toBe(0)
    await page.close()
  })
})

test('the overview of a Foreman with an hour of activity (FOREMAN_UPDATE_SCREENSHOT=1 saves it for the README)', async () => {
  const updating = process.env.FOREMAN_UPDATE_SCREENSHOT === '1'
  // The README's picture shows the default table names; only on the run's own
  // throwaway Postgres, since the fixture drops its tables afterwards.
  const readmeNames = updating && process.env.FOREMAN_TEST_EMBEDDED === '1'
  const demo = await startFixture({}, readmeNames ? { prefix: 'foreman_' } : {})
  const origin = demo.serve()
  await seedRealisticActivity(demo)
  const { page, errors } = await open('/', origin)
  await page.locator('[data-testid=overview-queue][data-queue=reports] .paused').waitFor()
  await page.locator('.chart rect.bar-failed').first().waitFor()
  // Each part of the overview arrives with its own read: wait for the workers' too.
  await page.locator('[data-testid=total-workers]', { hasText: /^2$/ }).waitFor()
  expect(await page.getByTestId('total-workers').textContent()).toBe('2')
  await screenshot(page, 'overview-realistic')
  if (updating) {
    await page.screenshot({ path: resolve(import.meta.dir, '..', 'docs', 'console-overview.png'), fullPage: true })
  }
  await page.emulateMedia({ colorScheme: 'dark' })
  await screenshot(page, 'overview-dark')
  // On a phone the page itself never scrolls sideways; wide tables scroll inside their card.
  await page.setViewportSize({ width: 390, height: 844 })
  expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
  await screenshot(page, 'overview-phone')
  expect(errors).toEqual([])
  await page.close()
})
