/** Starts worker processes (worker-main.ts) and in-process workers, and stops them. */
import { resolve } from 'node:path'
import { onCleanup, track } from './processes'
import type { Recorder } from './record'
import { runWorker, type WorkerPlan } from './worker-loop'
import type { WorkerProcessPlan } from './worker-main'

const MAIN = resolve(import.meta.dir, 'worker-main.ts')

/** A worker process. */
export interface WorkerProcess {
  id: string
  recordFile: string
  proc: ReturnType<typeof Bun.spawn>
}

/** Spawns a worker process with `plan`; its records go to plan.recordFile. */
export function spawnWorker(plan: WorkerProcessPlan): WorkerProcess {
  const proc = Bun.spawn([process.execPath, MAIN], {
    env: { ...process.env, FOREMAN_FAULT_WORKER: JSON.stringify(plan) },
    stdout: 'inherit',
    stderr: 'inherit',
  })
  track({ pid: proc.pid, exited: proc.exited, kill: (s) => proc.kill(s) })
  return { id: plan.workerId, recordFile: plan.recordFile, proc }
}

/** SIGTERMs worker processes and waits for them (SIGKILL after 20 s). */
export async function stopWorkers(workers: WorkerProcess[]): Promise<void> {
  await Promise.all(
    workers.map(async ({ proc }) => {
      if (proc.exitCode !== null || proc.signalCode !== null) return
      proc.kill('SIGTERM')
      const late = setTimeout(() => proc.kill('SIGKILL'), 20_000)
      await proc.exited
      clearTimeout(late)
    }),
  )
}

/** Workers running inside the test process, recording into `recorder`. */
export class InProcessWorkers {
  private readonly stop = new AbortController()
  private readonly running: Promise<void>[] = []

  constructor(private readonly recorder: Recorder) {
    onCleanup(() => this.stop.abort())
  }

  /** Starts one worker with `plan`. */
  start(plan: WorkerPlan): void {
    this.running.push(runWorker(plan, this.recorder.add, this.stop.signal))
  }

  /** Stops claiming, lets claimed jobs finish, resolves when every worker has returned. */
  async stopAll(): Promise<void> {
    this.stop.abort()
    await Promise.all(this.running)
  }
}
