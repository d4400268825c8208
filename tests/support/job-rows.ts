/** Rows for the insert statements, for tests and benchmarks alike (no test runner imports here). */
import { newJobId } from '../../src/ids'
import type { JobInsert } from '../../src/jobs/sql'

/** A row for the insert statements (jobInsert, jobInsertMany), with the API's defaults and a fresh id. */
export function jobInsertOf(kind: string, overrides: Partial<JobInsert> = {}): JobInsert {
  return {
    id: newJobId(),
    kind,
    queue: 'default',
    service: '',
    idempotencyKey: null,
    concurrencyKey: null,
    params: {},
    priority: 0,
    maxAttempts: 1,
    scheduledAt: null,
    flowControlled: false,
    ...overrides,
  }
}
