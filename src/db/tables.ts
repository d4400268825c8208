import { validateTablePrefix } from '../config'

/** The prefixed names of Foreman's tables. Every SQL statement takes them from here. */
export interface Tables {
  prefix: string
  jobs: string
  runs: string
  schedules: string
  /** Queues an operator paused (migrations/005). */
  pausedQueues: string
  /** Flow-control limits per kind (migrations/007). */
  limits: string
  /** One row per (kind, concurrency key) of a limited kind with live jobs (migrations/007). */
  flowSlots: string
  /** Finished jobs, partitioned by completion day (migrations/009). */
  jobsHistory: string
  /** Their runs, in their job's day (migrations/009). */
  runsHistory: string
  /** Forever-unique idempotency keys, across hot and history (migrations/009). */
  jobKeys: string
  migrations: string
}

/** Table names for a prefix; the prefix is validated because it becomes part of identifiers. */
export function tablesFor(prefix: string): Tables {
  validateTablePrefix(prefix)
  return {
    prefix,
    jobs: `${prefix}jobs`,
    runs: `${prefix}job_runs`,
    schedules: `${prefix}schedules`,
    pausedQueues: `${prefix}paused_queues`,
    limits: `${prefix}limits`,
    flowSlots: `${prefix}flow_slots`,
    jobsHistory: `${prefix}jobs_history`,
    runsHistory: `${prefix}job_runs_history`,
    jobKeys: `${prefix}job_keys`,
    migrations: `${prefix}migrations`,
  }
}
