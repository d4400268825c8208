import type { Logger } from '../log'

/** A background sweep on a Bun timer. */
export interface SweepLoop {
  /** Stops scheduling and waits for a sweep in progress to finish. */
  stop(): Promise<void>
}

/** How a sweep runs. */
export interface SweepOptions {
  name: string
  intervalMs: number
  log: Logger
  /** One sweep; resolves to what it did, for the log. */
  sweep: () => Promise<Record<string, number>>
}

/**
 * Runs `sweep` every `intervalMs`, starting after a random delay within one
 * interval so instances booted together do not sweep in lockstep. The next run is
 * scheduled only after the previous one ends (no overlap). A failed sweep is
 * logged and the loop goes on: a database blip must not stop the reaper for good.
 */
export function startSweepLoop({ name, intervalMs, log, sweep }: SweepOptions): SweepLoop {
  let timer: ReturnType<typeof setTimeout> | undefined
  let running: Promise<void> | undefined
  let stopped = false

  const tick = async () => {
    try {
      const outcome = await sweep()
      if (Object.values(outcome).some((n) => n > 0)) log.info({ sweep: name, ...outcome }, `${name} sweep`)
    } catch (err) {
      log.error({ sweep: name, err }, `${name} sweep failed`)
    }
  }
  const schedule = (delay: number) => {
    if (stopped) return
    timer = setTimeout(() => {
      running = tick().finally(() => {
        running = undefined
        schedule(intervalMs)
      })
    }, delay)
  }
  schedule(Math.random() * intervalMs)

  return {
    async stop() {
      stopped = true
      clearTimeout(timer)
      await running
    },
  }
}
