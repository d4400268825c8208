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

const ULID = '[0-9A-HJKMNP-TV-Z]{26}'
/** Pattern every job id matches. */
export const JOB_ID_PATTERN = `^job_${ULID}$`
/** Pattern every schedule id matches. */
export const SCHEDULE_ID_PATTERN = `^sched_${ULID}$`
/** Pattern every run id matches. */
export const RUN_ID_PATTERN = `^run_${ULID}$`
