/**
 * A real headless browser for the console's end-to-end tests: Debian's Chromium
 * driven by playwright-core. Missing Chromium is a failure with the fix in its
 * message (`.ci/run` installs it), never a skip.
 */
import { existsSync, mkdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type Browser, chromium, type Page } from 'playwright-core'

/** Where Debian's `chromium` package puts the browser. */
export const CHROMIUM = '/usr/bin/chromium'

/** Launches headless Chromium; throws with the install command when it is not there. */
export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `${CHROMIUM} not found: the console tests need Debian's Chromium (apt-get update && apt-get install -y chromium)`,
    )
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu'] })
}

/** Where a test run's screenshots go (FOREMAN_SCREENSHOT_DIR, else a folder under the system temp dir). */
export function screenshotDir(): string {
  const dir = process.env.FOREMAN_SCREENSHOT_DIR ?? join(tmpdir(), 'foreman-console-screenshots')
  mkdirSync(dir, { recursive: true })
  return dir
}

/** Saves a full-page screenshot of `page` as `<name>.png` in the run's folder; answers the path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  const path = join(screenshotDir(), `${name}.png`)
  await page.screenshot({ path, fullPage: true })
  return path
}

/** Collects the page's uncaught errors and console errors, so a test can expect none. */
export function pageErrors(page: Page): string[] {
  const errors: string[] = []
  page.on('pageerror', (error) => errors.push(error.message))
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text())
  })
  return errors
}
