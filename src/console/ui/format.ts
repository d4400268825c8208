/** How numbers and times read in the console. */

/** A duration in seconds as `42s`, `5m 3s`, `2h 10m`, `3d 4h`. */
export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return '—'
  const s = Math.max(0, seconds)
  if (s < 10) return `${Math.round(s * 10) / 10}s`
  if (s < 60) return `${Math.round(s)}s`
  const units: [number, string][] = [
    [86_400, 'd'],
    [3_600, 'h'],
    [60, 'm'],
    [1, 's'],
  ]
  const i = units.findIndex(([size]) => s >= size)
  const [big, bigName] = units[i] as [number, string]
  const [small, smallName] = units[i + 1] as [number, string]
  const whole = Math.floor(s / big)
  const rest = Math.floor((s - whole * big) / small)
  return rest ? `${whole}${bigName} ${rest}${smallName}` : `${whole}${bigName}`
}

/** `3m ago` / `in 5m` for a timestamp, relative to now. */
export function ago(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—'
  const seconds = (now - Date.parse(iso)) / 1000
  if (Math.abs(seconds) < 1) return 'now'
  return seconds >= 0 ? `${duration(seconds)} ago` : `in ${duration(-seconds)}`
}

/** Seconds between two timestamps (to now when `to` is null). */
export function between(from: string | null | undefined, to: string | null | undefined): number | null {
  if (!from) return null
  return ((to ? Date.parse(to) : Date.now()) - Date.parse(from)) / 1000
}

/** A timestamp in the browser's zone, or in `timeZone` with the zone's name, to the second. */
export function dateTime(iso: string | Date | null | undefined, timeZone?: string): string {
  if (!iso) return '—'
  // dateStyle and timeStyle cannot be combined with timeZoneName (a TypeError): spelled out for a zone.
  const options: Intl.DateTimeFormatOptions = timeZone
    ? {
        timeZone,
        timeZoneName: 'short',
        weekday: 'short',
        year: 'numeric',
        month: 'short',
        day: 'numeric',
        hour: '2-digit',
        minute: '2-digit',
        second: '2-digit',
      }
    : { dateStyle: 'medium', timeStyle: 'medium' }
  return new Intl.DateTimeFormat(undefined, options).format(typeof iso === 'string' ? new Date(iso) : iso)
}

/** A count with thousands separators. */
export const count = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n.toLocaleString())

/** JSON for reading: indented, `—` for nothing. */
export const pretty = (value: unknown) => (value === null || value === undefined ? '—' : JSON.stringify(value, null, 2))
