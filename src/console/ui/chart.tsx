/** The throughput chart: per-minute bars (succeeded, failed stacked) and a line for enqueued, as inline SVG. */
import type { Throughput } from './api'
import { count } from './format'

const WIDTH = 600
const HEIGHT = 180
const PAD = { top: 10, right: 8, bottom: 22, left: 40 }

/** Minute buckets from `from` to `to`, summed over kinds. */
export function minuteTotals(stats: Throughput) {
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
export function ThroughputChart(props: { stats: Throughput }) {
  const totals = minuteTotals(props.stats)
  const sum = (key: 'enqueued' | 'succeeded' | 'failed' | 'retried') => totals.reduce((n, b) => n + b[key], 0)
  const peak = Math.max(1, ...totals.map((b) => Math.max(b.enqueued, b.succeeded + b.failed)))
  const plotW = WIDTH - PAD.left - PAD.right
  const plotH = HEIGHT - PAD.top - PAD.bottom
  const slot = plotW / totals.length
  const y = (n: number) => PAD.top + plotH - (n / peak) * plotH
  const line = totals.map((b, i) => `${(PAD.left + (i + 0.5) * slot).toFixed(1)},${y(b.enqueued).toFixed(1)}`)
  const label = `Per minute over the last hour: ${count(sum('enqueued'))} enqueued, ${count(sum('succeeded'))} succeeded, ${count(sum('failed'))} failed, ${count(sum('retried'))} retried; busiest minute ${count(peak)}.`
  const ticks = [0, Math.floor(totals.length / 2), totals.length - 1]
  return (
    <figure class="chart" data-testid="throughput-chart">
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-label={label}>
        <line class="axis" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(0)} y2={y(0)} />
        <line class="grid" x1={PAD.left} x2={WIDTH - PAD.right} y1={y(peak)} y2={y(peak)} />
        <text class="tick" x={PAD.left - 4} y={y(peak) + 4} text-anchor="end">
          {count(peak)}
        </text>
        <text class="tick" x={PAD.left - 4} y={y(0) + 4} text-anchor="end">
          0
        </text>
        {totals.map((b, i) => {
          const x = PAD.left + i * slot + slot * 0.15
          const w = Math.max(1, slot * 0.7)
          return (
            <g key={b.at}>
              <title>{`${clock(b.at)}: ${b.enqueued} enqueued, ${b.succeeded} succeeded, ${b.failed} failed`}</title>
              {b.succeeded > 0 && (
                <rect class="bar-succeeded" x={x} width={w} y={y(b.succeeded)} height={y(0) - y(b.succeeded)} />
              )}
              {b.failed > 0 && (
                <rect
                  class="bar-failed"
                  x={x}
                  width={w}
                  y={y(b.succeeded + b.failed)}
                  height={y(b.succeeded) - y(b.succeeded + b.failed)}
                />
              )}
            </g>
          )
        })}
        <polyline class="line-enqueued" points={line.join(' ')} />
        {ticks.map((i) => (
          <text key={i} class="tick" x={PAD.left + (i + 0.5) * slot} y={HEIGHT - 6} text-anchor="middle">
            {clock(totals[i]?.at ?? 0)}
          </text>
        ))}
      </svg>
      <figcaption class="legend">
        <span class="key key-enqueued">enqueued {count(sum('enqueued'))}</span>
        <span class="key key-succeeded">succeeded {count(sum('succeeded'))}</span>
        <span class="key key-failed">failed {count(sum('failed'))}</span>
        <span class="key key-retried">retried {count(sum('retried'))}</span>
      </figcaption>
    </figure>
  )
}
