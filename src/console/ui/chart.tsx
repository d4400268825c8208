/** The throughput chart: per-minute bars (succeeded, failed stacked) and a line for enqueued, as inline SVG. */
import type { Stats } from './api'
import { count } from './format'

// The plot is drawn in minute units and stretched to the card's width; labels are
// HTML around it, so they keep their size on a phone and on a wide screen.
const HEIGHT = 100
/** Minute buckets from `from` to `to`, summed over kinds. */
export function minuteTotals(stats: Stats) {
  const step = stats.bucket_seconds * 1000
  const start = Math.floor(Date.parse(stats.from) / step) * step
  const buckets = Math.max(1, Math.ceil((Date.parse(stats.to) - start) / step))
  const totals = Array.from({ length: buckets }, (_, i) => ({
    at: start + i * step,
    enqueued: 0,
    succeeded: 0,
    failed: 0,
    retried: 0,
  }))
  for (const row of stats.rows) {
    const bucket = totals[Math.floor((Date.parse(row.minute) - start) / step)]
    if (!bucket) continue
    bucket.enqueued += row.enqueued
    bucket.succeeded += row.succeeded
    bucket.failed += row.failed
    bucket.retried += row.retried
  }
  return totals
}

const clock = (at: number) => new Date(at).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' })

/** Draws `stats`; the figures are also in the label for screen readers. */
export function ThroughputChart(props: { stats: Stats }) {
  const totals = minuteTotals(props.stats)
  const sum = (key: 'enqueued' | 'succeeded' | 'failed' | 'retried') => totals.reduce((n, b) => n + b[key], 0)
  const peak = Math.max(1, ...totals.map((b) => Math.max(b.enqueued, b.succeeded + b.failed)))
  const y = (n: number) => HEIGHT - (n / peak) * HEIGHT
  const line = totals.map((b, i) => `${i + 0.5},${y(b.enqueued).toFixed(2)}`).join(' ')
  const label = `Per minute over the last hour: ${count(sum('enqueued'))} enqueued, ${count(sum('succeeded'))} succeeded, ${count(sum('failed'))} failed, ${count(sum('retried'))} retried; busiest minute ${count(peak)}.`
  const middle = totals[Math.floor(totals.length / 2)]
  return (
    <figure class="chart" data-testid="throughput-chart">
      <div class="chart-plot">
        <span class="chart-peak">{count(peak)}/min</span>
        <svg viewBox={`0 0 ${totals.length} ${HEIGHT}`} preserveAspectRatio="none" role="img" aria-label={label}>
          {totals.map((b, i) => (
            <g key={b.at}>
              <title>{`${clock(b.at)}: ${b.enqueued} enqueued, ${b.succeeded} succeeded, ${b.failed} failed`}</title>
              {b.succeeded > 0 && (
                <rect
                  class="bar-succeeded"
                  x={i + 0.15}
                  width={0.7}
                  y={y(b.succeeded)}
                  height={HEIGHT - y(b.succeeded)}
                />
              )}
              {b.failed > 0 && (
                <rect
                  class="bar-failed"
                  x={i + 0.15}
                  width={0.7}
                  y={y(b.succeeded + b.failed)}
                  height={y(b.succeeded) - y(b.succeeded + b.failed)}
                />
              )}
            </g>
          ))}
          <polyline class="line-enqueued" points={line} vector-effect="non-scaling-stroke" />
        </svg>
      </div>
      <div class="chart-times" aria-hidden="true">
        <span>{clock(totals[0]?.at ?? 0)}</span>
        <span>{clock(middle?.at ?? 0)}</span>
        <span>now</span>
      </div>
      <figcaption class="legend">
        <span class="key key-enqueued">enqueued {count(sum('enqueued'))}</span>
        <span class="key key-succeeded">succeeded {count(sum('succeeded'))}</span>
        <span class="key key-failed">failed {count(sum('failed'))}</span>
        <span class="key key-retried">retried {count(sum('retried'))}</span>
      </figcaption>
    </figure>
  )
}
