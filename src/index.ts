/** Process entry: read config, start Foreman, stop cleanly on SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from './config'
import { createLogger } from './log'
import { type RunningForeman, startForeman } from './server'

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`foreman: invalid configuration: ${error.message}`)
  process.exit(1)
}

const log = createLogger(config.env)

// No top-level await in this file: Bun 1.4 does not exit on an uncaught error
// while the entry module's top-level await is pending, it spins at 100% CPU
// forever (oven-sh/bun#9843, #14951; seen with initdb's EACCES). Any stray error
// is fatal here, with a log line; 'exit' then stops the embedded Postgres.
process.on('uncaughtException', (err) => {
  log.fatal({ err }, 'uncaught exception')
  process.exit(1)
})
process.on('unhandledRejection', (err) => {
  log.fatal({ err }, 'unhandled rejection')
  process.exit(1)
})

let foreman: RunningForeman | undefined
for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => {
    log.info({ signal }, 'signal received')
    // Still starting: nothing to drain; the embedded Postgres stops on 'exit'.
    if (!foreman) process.exit(signal === 'SIGINT' ? 130 : 143)
    foreman.shutdown().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'shutdown failed')
        process.exit(1)
      },
    )
  })
}

startForeman(config, log).then(
  (running) => {
    foreman = running
  },
  (err) => {
    log.fatal({ err }, 'Foreman failed to start')
    process.exit(1)
  },
)
