/**
 * What the suite records: every operation on a job, with the wall-clock time it
 * was answered (`t`, ms since the epoch; server and client share the machine's
 * clock) and, where the answer carries one, the server's own timestamp (`st`).
 * Workers in child processes append the same records as JSON lines to a file of
 * their own with a synchronous write each, so a kill -9 loses at most the
 * record being written.
 */
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs'

/** An HTTP status, or `error` when no answer arrived (connection refused or reset, timeout). */
export type Answer = number | 'error'

/** One recorded operation. */
export type Rec =
  | { op: 'enqueue'; t: number; job: string; key: string; created: boolean }
  | { op: 'claim'; t: number; worker: string; job: string; run: string; attempt: number; lease: string }
  | { op: 'claim-error'; t: number; worker: string; answer: Answer; ms: number }
  | {
      op: 'heartbeat'
      t: number
      worker: string
      job: string
      run: string
      answer: Answer
      lease?: string
      st?: string
      cancel?: boolean
    }
  | { op: 'start'; t: number; worker: string; job: string; run: string }
  | { op: 'finish'; t: number; worker: string; job: string; run: string; overrun?: boolean }
  | { op: 'lost'; t: number; worker: string; job: string; run: string }
  | { op: 'complete'; t: number; sent: number; worker: string; job: string; run: string; answer: Answer }
  | {
      op: 'fail'
      t: number
      sent: number
      worker: string
      job: string
      run: string
      answer: Answer
      retryable: boolean
    }
  | { op: 'cancel'; t: number; job: string; answer: Answer; status?: string }
  | { op: 'fault'; t: number; kind: string; target: string }
  | { op: 'request'; t: number; worker: string; path: string; answer: Answer; ms: number }

/** Where records go. */
export type Sink = (rec: Rec) => void

/** Records kept in memory (the test process's own operations and in-process workers). */
export class Recorder {
  readonly recs: Rec[] = []
  /** Adds one record. */
  readonly add: Sink = (rec) => {
    this.recs.push(rec)
  }

  /** Adds the records a child wrote to `file` (a torn last line from a kill -9 is skipped). */
  addFile(file: string): void {
    if (!existsSync(file)) return
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (!line) continue
      try {
        this.recs.push(JSON.parse(line) as Rec)
      } catch {}
    }
  }

  /** Records of one kind. */
  of<K extends Rec['op']>(op: K): Extract<Rec, { op: K }>[] {
    return this.recs.filter((r): r is Extract<Rec, { op: K }> => r.op === op)
  }
}

/** A sink appending JSON lines to `file` with one write(2) each; `close` releases the descriptor. */
export function fileSink(file: string): { sink: Sink; close: () => void } {
  const fd = openSync(file, 'a')
  return {
    sink: (rec) => {
      writeSync(fd, `${JSON.stringify(rec)}\n`)
    },
    close: () => closeSync(fd),
  }
}

/** The status of a failed client call: its HTTP status, or `error` when nothing came back. */
export function answerOf(error: unknown): Answer {
  const status = (error as { status?: unknown } | null)?.status
  return typeof status === 'number' ? status : 'error'
}
