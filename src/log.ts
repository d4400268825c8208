import pino from 'pino'
import pretty from 'pino-pretty'

/** The structured logger used across Foreman. */
export type Logger = pino.Logger

/** JSON lines in production; readable colour output when `ENV=DEV`. */
export function createLogger(env: 'PROD' | 'DEV', level = process.env.LOG_LEVEL ?? 'info'): Logger {
  const options = { name: 'foreman', level }
  return env === 'DEV' ? pino(options, pretty({ colorize: true, sync: true })) : pino(options)
}
