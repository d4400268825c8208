/**
 * Where the CPU went during the run: this process (the four instances, the
 * workers and the subscribers share it) against the whole machine, from
 * /proc/stat (Linux). On this test's machine the rest is mostly Postgres, so the
 * two say which side set the pace.
 */
import { readFileSync } from 'node:fs'
import { cpus } from 'node:os'

/** Busy jiffies of the whole machine, or null off Linux. */
function machineBusy(): number | null {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal: idle and iowait are not busy.
    return fields.slice(0, 8).reduce((sum, n, i) => (i === 3 || i === 4 ? sum : sum + n), 0)
  } catch {
    return null
  }
}

/** Cores in use on average since `start()`: this process and the rest of the machine. */
export function startCpuMeter() {
  const wall = performance.now()
  const own = process.cpuUsage()
  const busy = machineBusy()
  return (): { cores: number; processCores: number; otherCores: number | null } => {
    const seconds = (performance.now() - wall) / 1000
    const used = process.cpuUsage(own)
    const processCores = (used.user + used.system) / 1e6 / seconds
    const now = machineBusy()
    // USER_HZ is 100 on Linux.
    const machineCores = busy === null || now === null ? null : (now - busy) / 100 / seconds
    return {
      cores: cpus().length,
      processCores,
      otherCores: machineCores === null ? null : machineCores - processCores,
    }
  }
}
