/**
 * When a schedule fires. Calendar arithmetic (5-field cron, `@daily`-style
 * descriptors, IANA time zones, daylight saving) is croner's; this file adds
 * what it lacks: `@every <duration>`, `@midnight`, and strict 5-field input.
 *
 * Daylight saving, as croner resolves it and as tests/schedules-recurrence checks:
 * a local time skipped by a spring-forward jump fires once, at the first instant
 * after the gap (02:30 → 03:00); a local time that occurs twice in a fall-back
 * fires once, at its first occurrence.
 */
import { Cron } from 'croner'
import { InvalidInput } from '../errors'

/** A parsed expression: the next fire time strictly after `after`. */
export interface Recurrence {
  /** `previous` (the fire time being replaced) anchors `@every` so it does not drift. */
  next(after: Date, previous?: Date | null): Date
}

/**
 * A Map, not an object literal: the key is the caller's text, and a plain lookup
 * found Object.prototype members (`constructor`, `__proto__`), a 500.
 */
const DESCRIPTORS: ReadonlyMap<string, string> = new Map([
  ['@yearly', '0 0 1 1 *'],
  ['@annually', '0 0 1 1 *'],
  ['@monthly', '0 0 1 * *'],
  ['@weekly', '0 0 * * 0'],
  ['@daily', '0 0 * * *'],
  ['@midnight', '0 0 * * *'],
  ['@hourly', '0 * * * *'],
])

const UNIT_MS: ReadonlyMap<string, number> = new Map([
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1_000],
  ['ms', 1],
])
const MIN_EVERY_MS = 1_000
const MAX_EVERY_MS = 366 * 86_400_000

/** Parses a Go-style duration ("90s", "5m", "1h30m", "1.5h") into milliseconds; null if it is not one. */
export function parseDuration(text: string): number | null {
  if (!/^(\d+(\.\d+)?(ms|h|m|s))+$/.test(text)) return null
  let total = 0
  for (const [, amount, unit] of text.matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) {
    total += Number(amount) * (UNIT_MS.get(unit ?? '') ?? Number.NaN)
  }
  return Number.isFinite(total) ? total : null
}

/** Throws InvalidInput('timezone') unless `timezone` is an IANA zone this runtime knows. */
export function checkTimezone(timezone: string): void {
  try {
    // Intl also takes bare offsets ("+05:30"), which are not IANA zones and know no daylight saving.
    if (/^[+-]/.test(timezone)) throw new RangeError('offset')
    new Intl.DateTimeFormat('en-US', { timeZone: timezone })
  } catch {
    throw new InvalidInput('timezone', `${JSON.stringify(timezone)} is not an IANA time zone (e.g. "Europe/Berlin")`)
  }
}

/** Parses `expr` in `timezone`; throws InvalidInput naming cron_expr or timezone. */
export function parseRecurrence(expr: string, timezone: string): Recurrence {
  checkTimezone(timezone)
  const trimmed = expr.trim().replace(/\s+/g, ' ')
  const every = /^@every (.+)$/i.exec(trimmed)
  if (every) {
    const ms = parseDuration(every[1] ?? '')
    if (ms === null || ms < MIN_EVERY_MS || ms > MAX_EVERY_MS) {
      throw new InvalidInput(
        'cron_expr',
        '@every needs a duration from 1s to 366 days, like "@every 5m" or "@every 1h30m"',
      )
    }
    return {
      next(after, previous) {
        if (!previous) return new Date(after.getTime() + ms)
        // Keep the cadence of the previous fire; skip (not replay) missed ones.
        const steps = Math.max(1, Math.floor((after.getTime() - previous.getTime()) / ms) + 1)
        return new Date(previous.getTime() + steps * ms)
      },
    }
  }
  const pattern = DESCRIPTORS.get(trimmed.toLowerCase()) ?? trimmed
  if (pattern.startsWith('@')) throw new InvalidInput('cron_expr', `unknown descriptor ${JSON.stringify(trimmed)}`)
  if (pattern.split(' ').length !== 5) {
    throw new InvalidInput(
      'cron_expr',
      'must have 5 fields (minute hour day-of-month month day-of-week) or be a descriptor',
    )
  }
  let cron: Cron
  try {
    cron = new Cron(pattern, { timezone, paused: true })
  } catch (error) {
    throw new InvalidInput('cron_expr', `is not a valid cron expression: ${(error as Error).message}`)
  }
  // An expression that can never match (30 February) would leave next_fire_at empty forever.
  if (!cron.nextRun(new Date())) throw new InvalidInput('cron_expr', 'never fires')
  return {
    next(after) {
      const next = cron.nextRun(after)
      if (!next) throw new InvalidInput('cron_expr', 'never fires again')
      return next
    },
  }
}
