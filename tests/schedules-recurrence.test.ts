/**
 * When a schedule fires: 5-field cron, descriptors and `@every` durations in IANA
 * time zones, the daylight-saving rule (a skipped local time fires once at the end
 * of the gap; a repeated one fires once, at its first occurrence), and the
 * expressions that are refused with a 400 naming the field.
 */
import { describe, expect, test } from 'bun:test'
import { InvalidInput } from '../src/errors'
import { checkTimezone, parseDuration, parseRecurrence } from '../src/schedules/recurrence'

/** The next `n` fire times (ISO, UTC) strictly after `from`. */
function fires(expr: string, timezone: string, from: string, n: number): string[] {
  const recurrence = parseRecurrence(expr, timezone)
  const out: string[] = []
  let at = new Date(from)
  for (let i = 0; i < n; i++) {
    at = recurrence.next(at)
    out.push(at.toISOString())
  }
  return out
}

/** Fire times in [from, to), stepping fire by fire. */
function firesBetween(expr: string, timezone: string, from: string, to: string): string[] {
  const recurrence = parseRecurrence(expr, timezone)
  const out: string[] = []
  let at = new Date(Date.parse(from) - 1)
  for (;;) {
    at = recurrence.next(at)
    if (at.getTime() >= Date.parse(to)) return out
    out.push(at.toISOString())
  }
}

/** The InvalidInput a call throws (fails the test when it throws nothing or something else). */
function invalidInputOf(fn: () => unknown): InvalidInput {
  try {
    fn()
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidInput)
    return error as InvalidInput
  }
  throw new Error('expected an InvalidInput, but nothing was thrown')
}

describe('5-field cron (UTC)', () => {
  test('"30 2 * * *" fires at 02:30 every day, strictly after the given instant', () => {
    expect(fires('30 2 * * *', 'UTC', '2026-05-13T11:00:00Z', 3)).toEqual([
      '2026-05-14T02:30:00.000Z',
      '2026-05-15T02:30:00.000Z',
      '2026-05-16T02:30:00.000Z',
    ])
    expect(fires('30 2 * * *', 'UTC', '2026-05-14T02:30:00Z', 1)).toEqual(['2026-05-15T02:30:00.000Z'])
  })

  test('steps, ranges and weekdays: "*/15 9-17 * * 1-5" stays in working hours and skips the weekend', () => {
    // 2026-05-15 is a Friday; the next working day is Monday the 18th.
    expect(fires('*/15 9-17 * * 1-5', 'UTC', '2026-05-15T17:20:00Z', 3)).toEqual([
      '2026-05-15T17:30:00.000Z',
      '2026-05-15T17:45:00.000Z',
      '2026-05-18T09:00:00.000Z',
    ])
  })

  test('day-of-week names and 7 for Sunday', () => {
    expect(fires('0 12 * * MON', 'UTC', '2026-05-13T10:00:00Z', 2)).toEqual([
      '2026-05-18T12:00:00.000Z',
      '2026-05-25T12:00:00.000Z',
    ])
    expect(fires('0 12 * * 7', 'UTC', '2026-05-13T10:00:00Z', 1)).toEqual(['2026-05-17T12:00:00.000Z'])
  })

  test('day-of-month and day-of-week both restricted match either (classic cron): Fridays and the 13th', () => {
    // 2026-06-12 is a Friday, 2026-06-13 a Saturday.
    expect(fires('0 0 13 * 5', 'UTC', '2026-06-06T00:00:00Z', 3)).toEqual([
      '2026-06-12T00:00:00.000Z',
      '2026-06-13T00:00:00.000Z',
      '2026-06-19T00:00:00.000Z',
    ])
  })

  test('29 February fires only in leap years (2028); 31 April never fires and is refused', () => {
    expect(fires('0 0 29 2 *', 'UTC', '2026-05-13T00:00:00Z', 1)).toEqual(['2028-02-29T00:00:00.000Z'])
    expect(invalidInputOf(() => parseRecurrence('0 0 31 4 *', 'UTC')).field).toBe('cron_expr')
  })

  test('extra whitespace around and between fields is tolerated', () => {
    expect(fires('  30   2 * *  * ', 'UTC', '2026-05-13T11:00:00Z', 1)).toEqual(['2026-05-14T02:30:00.000Z'])
  })
})

describe('descriptors', () => {
  // 2026-05-13 10:20 UTC is a Wednesday.
  const from = '2026-05-13T10:20:00Z'
  const cases: [string, string[]][] = [
    ['@yearly', ['2027-01-01T00:00:00.000Z', '2028-01-01T00:00:00.000Z']],
    ['@annually', ['2027-01-01T00:00:00.000Z', '2028-01-01T00:00:00.000Z']],
    ['@monthly', ['2026-06-01T00:00:00.000Z', '2026-07-01T00:00:00.000Z']],
    ['@weekly', ['2026-05-17T00:00:00.000Z', '2026-05-24T00:00:00.000Z']],
    ['@daily', ['2026-05-14T00:00:00.000Z', '2026-05-15T00:00:00.000Z']],
    ['@midnight', ['2026-05-14T00:00:00.000Z', '2026-05-15T00:00:00.000Z']],
    ['@hourly', ['2026-05-13T11:00:00.000Z', '2026-05-13T12:00:00.000Z']],
  ]
  for (const [descriptor, expected] of cases) {
    test(`${descriptor} fires at ${expected.join(', ')}`, () => {
      expect(fires(descriptor, 'UTC', from, 2)).toEqual(expected)
    })
  }

  test('descriptors are case-insensitive and follow the time zone (@daily in Berlin is 22:00Z in summer)', () => {
    expect(fires('@DAILY', 'UTC', from, 1)).toEqual(['2026-05-14T00:00:00.000Z'])
    expect(fires('@daily', 'Europe/Berlin', from, 1)).toEqual(['2026-05-13T22:00:00.000Z'])
  })
})

describe('@every <duration>', () => {
  test('parseDuration reads Go-style durations into milliseconds; anything else is null', () => {
    expect(parseDuration('90s')).toBe(90_000)
    expect(parseDuration('5m')).toBe(300_000)
    expect(parseDuration('1h30m')).toBe(5_400_000)
    expect(parseDuration('1.5h')).toBe(5_400_000)
    expect(parseDuration('250ms')).toBe(250)
    expect(parseDuration('5x')).toBeNull()
    expect(parseDuration('')).toBeNull()
    expect(parseDuration('m5')).toBeNull()
  })

  test('@every is case-insensitive, like the descriptors', () => {
    const from = new Date('2026-01-01T00:00:00Z')
    expect(parseRecurrence('@Every 5m', 'UTC').next(from).toISOString()).toBe('2026-01-01T00:05:00.000Z')
  })

  const after = new Date('2026-01-01T00:00:00Z')
  for (const [text, ms] of [
    ['90s', 90_000],
    ['5m', 300_000],
    ['1h30m', 5_400_000],
    ['1.5h', 5_400_000],
  ] as const) {
    test(`@every ${text} without a previous fire: next = after + ${ms} ms`, () => {
      expect(parseRecurrence(`@every ${text}`, 'UTC').next(after).getTime()).toBe(after.getTime() + ms)
    })
  }

  test('with a previous fire it keeps the cadence and skips missed fires: the first previous + k·d after `after`', () => {
    const every = parseRecurrence('@every 90s', 'UTC')
    const previous = new Date('2026-01-01T00:00:00Z')
    // 10 minutes later: fires at 9:00 (k=6) and before are skipped, 10:30 (k=7) is next.
    expect(every.next(new Date('2026-01-01T00:10:00Z'), previous).toISOString()).toBe('2026-01-01T00:10:30.000Z')
    // Exactly on a cadence point: strictly after, so the following one.
    expect(every.next(new Date('2026-01-01T00:03:00Z'), previous).toISOString()).toBe('2026-01-01T00:04:30.000Z')
    // Just after the previous fire: previous + d.
    expect(every.next(new Date('2026-01-01T00:00:01Z'), previous).toISOString()).toBe('2026-01-01T00:01:30.000Z')
  })

  test('a three-day outage on @every 1h30m lands on the cadence, after `after`, within one period', () => {
    const every = parseRecurrence('@every 1h30m', 'UTC')
    const previous = new Date('2026-01-01T00:07:00Z')
    const after = new Date('2026-01-04T05:00:00Z')
    const next = every.next(after, previous)
    expect(next.getTime()).toBeGreaterThan(after.getTime())
    expect(next.getTime() - after.getTime()).toBeLessThanOrEqual(5_400_000)
    expect((next.getTime() - previous.getTime()) % 5_400_000).toBe(0)
    expect(next.toISOString()).toBe('2026-01-04T06:07:00.000Z')
  })
})

describe('refused expressions and time zones', () => {
  const bad: [string, string][] = [
    ['4 fields', '0 0 * *'],
    ['6 fields (seconds)', '0 0 0 * * *'],
    ['minute 61', '61 * * * *'],
    ['an unknown descriptor', '@fortnightly'],
    ['@every without a duration', '@every'],
    ['@every 0s', '@every 0s'],
    ['@every 5x', '@every 5x'],
    ['@every over 366 days', '@every 8785h'],
    ['an empty expression', ''],
    ['only whitespace', '   '],
    ['one that never fires (30 February)', '0 0 30 2 *'],
  ]
  for (const [label, expr] of bad) {
    test(`${label} (${JSON.stringify(expr)}) throws InvalidInput on cron_expr`, () => {
      const error = invalidInputOf(() => parseRecurrence(expr, 'UTC'))
      expect(error.field).toBe('cron_expr')
      expect(error.status).toBe(400)
      expect(error.message).toStartWith('cron_expr: ')
    })
  }

  test('an unknown time zone throws InvalidInput on timezone, from parseRecurrence and checkTimezone', () => {
    expect(invalidInputOf(() => parseRecurrence('@daily', 'Mars/Olympus')).field).toBe('timezone')
    expect(invalidInputOf(() => checkTimezone('Europe/Atlantis')).field).toBe('timezone')
    expect(invalidInputOf(() => checkTimezone('UTC+99')).field).toBe('timezone')
    // Bare offsets are not IANA zones (they know no daylight saving), though Intl takes them.
    expect(invalidInputOf(() => checkTimezone('+05:30')).field).toBe('timezone')
    expect(invalidInputOf(() => checkTimezone('-08:00')).field).toBe('timezone')
    expect(() => checkTimezone('US/Eastern')).not.toThrow()
    expect(() => checkTimezone('America/New_York')).not.toThrow()
  })

  test('a bad time zone is reported before a bad expression', () => {
    expect(invalidInputOf(() => parseRecurrence('nonsense', 'Nowhere/Land')).field).toBe('timezone')
  })
})

describe('daylight saving: America/New_York', () => {
  test('spring-forward 2026-03-08: "30 2 * * *" fires once that day at 03:00 EDT (07:00Z), then 06:30Z', () => {
    expect(fires('30 2 * * *', 'America/New_York', '2026-03-07T00:00:00Z', 4)).toEqual([
      '2026-03-07T07:30:00.000Z', // 02:30 EST
      '2026-03-08T07:00:00.000Z', // 02:30 does not exist: 03:00 EDT
      '2026-03-09T06:30:00.000Z', // 02:30 EDT
      '2026-03-10T06:30:00.000Z',
    ])
    // Exactly one fire in the local day of 2026-03-08 (05:00Z to 04:00Z next day).
    expect(firesBetween('30 2 * * *', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z')).toEqual([
      '2026-03-08T07:00:00.000Z',
    ])
  })

  test('fall-back 2026-11-01: "30 1 * * *" fires once that day, at the first 01:30 (EDT, 05:30Z)', () => {
    // The local day of 2026-11-01 runs 04:00Z to 05:00Z next day (25 hours).
    expect(firesBetween('30 1 * * *', 'America/New_York', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z')).toEqual([
      '2026-11-01T05:30:00.000Z',
    ])
    expect(fires('30 1 * * *', 'America/New_York', '2026-11-01T05:30:00Z', 1)).toEqual(['2026-11-02T06:30:00.000Z'])
  })

  test('after the first 01:30 fires, asking from any instant in the repeated hour (as a tick does) skips the second 01:30', () => {
    const daily = parseRecurrence('30 1 * * *', 'America/New_York')
    for (const after of [
      '2026-11-01T05:30:01Z',
      '2026-11-01T06:00:00Z',
      '2026-11-01T06:29:59Z',
      '2026-11-01T06:30:00Z',
    ]) {
      expect(daily.next(new Date(after)).toISOString()).toBe('2026-11-02T06:30:00.000Z')
    }
  })

  test('hourly across the fall-back fires every real hour: 25 fires that day, one hour apart', () => {
    const hours = firesBetween('0 * * * *', 'America/New_York', '2026-11-01T04:00:00Z', '2026-11-02T05:00:00Z')
    expect(hours).toHaveLength(25)
    expect(new Set(hours).size).toBe(25)
    for (let i = 1; i < hours.length; i++) {
      expect(Date.parse(hours[i]!) - Date.parse(hours[i - 1]!)).toBe(3_600_000)
    }
  })

  test('hourly across the spring-forward fires every real hour: 23 fires that day, one hour apart', () => {
    const hours = firesBetween('@hourly', 'America/New_York', '2026-03-08T05:00:00Z', '2026-03-09T04:00:00Z')
    expect(hours).toHaveLength(23)
    for (let i = 1; i < hours.length; i++) {
      expect(Date.parse(hours[i]!) - Date.parse(hours[i - 1]!)).toBe(3_600_000)
    }
  })
})

describe('daylight saving: Europe/Berlin', () => {
  test('spring-forward 2026-03-29: "30 2 * * *" fires once that day at 03:00 CEST (01:00Z)', () => {
    expect(fires('30 2 * * *', 'Europe/Berlin', '2026-03-28T00:00:00Z', 3)).toEqual([
      '2026-03-28T01:30:00.000Z', // 02:30 CET
      '2026-03-29T01:00:00.000Z', // 02:30 does not exist: 03:00 CEST
      '2026-03-30T00:30:00.000Z', // 02:30 CEST
    ])
    expect(firesBetween('30 2 * * *', 'Europe/Berlin', '2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z')).toHaveLength(1)
  })

  test('fall-back 2026-10-25: "30 2 * * *" fires once that day, at the first 02:30 (CEST, 00:30Z)', () => {
    expect(firesBetween('30 2 * * *', 'Europe/Berlin', '2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z')).toEqual([
      '2026-10-25T00:30:00.000Z',
    ])
    expect(fires('30 2 * * *', 'Europe/Berlin', '2026-10-25T00:30:00Z', 1)).toEqual(['2026-10-26T01:30:00.000Z'])
  })
})

describe('zones with unusual offsets', () => {
  test('Asia/Kolkata (+05:30, no daylight saving): 09:00 local is 03:30Z all year', () => {
    expect(fires('0 9 * * *', 'Asia/Kolkata', '2026-01-10T12:00:00Z', 1)).toEqual(['2026-01-11T03:30:00.000Z'])
    expect(fires('0 9 * * *', 'Asia/Kolkata', '2026-07-10T12:00:00Z', 1)).toEqual(['2026-07-11T03:30:00.000Z'])
  })

  test('Australia/Lord_Howe 30-minute spring-forward 2026-10-04: 02:15 is skipped and fires once at 02:30 (+11)', () => {
    expect(fires('15 2 * * *', 'Australia/Lord_Howe', '2026-10-02T12:00:00Z', 3)).toEqual([
      '2026-10-02T15:45:00.000Z', // 10-03 02:15 +10:30
      '2026-10-03T15:30:00.000Z', // 10-04 02:15 skipped: 02:30 +11:00
      '2026-10-04T15:15:00.000Z', // 10-05 02:15 +11:00
    ])
  })

  test('Australia/Lord_Howe 30-minute fall-back 2026-04-05: 01:45 fires once, at its first occurrence (+11)', () => {
    expect(fires('45 1 * * *', 'Australia/Lord_Howe', '2026-04-03T12:00:00Z', 3)).toEqual([
      '2026-04-03T14:45:00.000Z', // 04-04 01:45 +11:00
      '2026-04-04T14:45:00.000Z', // 04-05 01:45, first occurrence (+11:00)
      '2026-04-05T15:15:00.000Z', // 04-06 01:45 +10:30
    ])
  })

  test('Pacific/Auckland daily 09:00 is 20:00Z the day before in summer (+13) and 21:00Z in winter (+12)', () => {
    expect(fires('0 9 * * *', 'Pacific/Auckland', '2026-01-10T00:00:00Z', 2)).toEqual([
      '2026-01-10T20:00:00.000Z',
      '2026-01-11T20:00:00.000Z',
    ])
    expect(fires('0 9 * * *', 'Pacific/Auckland', '2026-06-10T00:00:00Z', 1)).toEqual(['2026-06-10T21:00:00.000Z'])
  })
})
