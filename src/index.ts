/** Process entry: read config, start Foreman, stop cleanly on SIGTERM/SIGINT. */
import { ConfigError, loadConfig } from './config'
import { takeBackShutdownSignals } from './db/embedded'
import { createLogger } from './log'
import { startForeman } from './server'

let config: ReturnType<typeof loadConfig>
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  console.error(`foreman: invalid configuration: ${error.message}`)
  process.exit(1)
}

const log = createLogger(config.env)
takeBackShutdownSignals()
try {
  const foreman = await startForeman(config, log)
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.on(signal, () => {
      log.info({ signal }, 'signal received')
      foreman.shutdown().then(
        () => process.exit(0),
        (err) => {
          log.error({ err }, 'shutdown failed')
          process.exit(1)
        },
      )
    })
  }
} catch (err) {
  log.fatal({ err }, 'Foreman failed to start')
  process.exit(1)
}
