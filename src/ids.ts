import { monotonicFactory } from 'ulid'

// Monotonic within this process, so ids minted in the same millisecond still sort
// in creation order; across processes they sort by millisecond.
const nextUlid = monotonicFactory()

/** A fresh job id: `job_` + ULID. */
export const newJobId = (): string => `job_${nextUlid()}`
/** A fresh run id: `run_` + ULID. */
export const newRunId = (): string => `run_${nextUlid()}`
/** A fresh schedule id: `sched_` + ULID. */
export const newScheduleId = (): string => `sched_${nextUlid()}`

/** The pattern of ids minted with `prefix` (`job_`, `run_`, `sched_`). */
export const idPattern = (prefix: string) => `^${prefix}[0-9A-HJKMNP-TV-Z]{26}$`
