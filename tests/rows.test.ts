/** Timestamps leave the database as RFC 3339 text, the same whichever path formats them. */
import { expect, test } from 'bun:test'
import { isoTimestamp } from '../src/db/rows'

/** The general path: make Postgres' text ISO, then let Date format it. */
const viaDate = (text: string) => new Date(text.replace(' ', 'T').replace(/([+-]\d\d)$/, '$1:00')).toISOString()

test('the text fast path agrees with Date for every fraction length, and other shapes still go through Date', () => {
  const stamps = [
    '2026-12-03 03:17:22.123456+00',
    '2026-12-03 03:17:22+00',
    '2026-12-03 03:17:22.1+00',
    '2026-12-03 03:17:22.9999+00',
    '2026-02-28 23:59:59.999999+00',
    '0050-06-01 00:00:00+00',
    '2026-12-03 03:17:22.123+05',
  ]
  for (const stamp of stamps) expect(isoTimestamp(stamp)).toBe(viaDate(stamp))
  expect(isoTimestamp('0050-06-01 00:00:00+00')).toBe('0050-06-01T00:00:00.000Z')
})

test('offsets other than +00 take the general path, and Dates format as themselves', () => {
  for (const stamp of ['2026-12-03 03:17:22.5+01', '2026-12-03 03:17:22.123456-03', '2026-12-03 03:17:22-11']) {
    expect(isoTimestamp(stamp)).toBe(viaDate(stamp))
  }
  expect(isoTimestamp(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 6)))).toBe('2026-01-02T03:04:05.006Z')
})
