/**
 * Preloaded into a Foreman child (`bun --preload`): an error that no one
 * catches, thrown while the process is starting its embedded Postgres (once
 * the data folder appears, as when initdb failed with EACCES).
 */
import { existsSync } from 'node:fs'

const dataDir = process.env.FOREMAN_EMBEDDED_DATA_DIR
const watch = setInterval(() => {
  if (!dataDir || !existsSync(dataDir)) return
  clearInterval(watch)
  throw new Error('injected: an error no one catches')
}, 20)
watch.unref()
