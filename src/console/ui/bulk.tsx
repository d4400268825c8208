/**
 * Bulk cancel, retry or delete, on the selected jobs or on every job matching the
 * filter. A dry run first counts what the action applies to; the confirmation
 * states that number; then the action runs, call after call while the server
 * says there is `more`.
 */
import { useState } from 'preact/hooks'
import { api, type BulkAction, type BulkBody, type BulkResult, type JobFilter } from './api'
import { Confirm, ErrorNote } from './components'
import { describeFilter } from './filter'
import { count } from './format'
import { useAction } from './hooks'

const VERBS: Record<BulkAction, { verb: string; done: string; applies: string }> = {
  cancel: { verb: 'Cancel', done: 'Cancelled', applies: 'pending or running and not yet asked to stop' },
  retry: { verb: 'Retry', done: 'Retried', applies: 'failed or cancelled' },
  delete: { verb: 'Delete', done: 'Deleted', applies: 'finished (succeeded, failed or cancelled)' },
}

interface Question {
  action: BulkAction
  target: Pick<BulkBody, 'ids' | 'filter'>
  matched: number
  more: boolean
}

/** The bulk bar: acts on `selected` when any are, else on everything `filter` matches. */
export function BulkActions(props: { selected: string[]; filter: JobFilter | undefined; onDone: () => void }) {
  const { selected, filter } = props
  const [question, setQuestion] = useState<Question>()
  const [outcome, setOutcome] = useState<string>()
  const action = useAction()

  const ask = (name: BulkAction) =>
    action.run(async () => {
      setOutcome(undefined)
      const target = selected.length ? { ids: selected } : { filter: filter ?? {} }
      const probe = await api.bulk({ action: name, ...target, dry_run: true })
      if (probe.matched === 0) {
        setOutcome(`No job here is ${VERBS[name].applies}: nothing to ${name}.`)
        return
      }
      setQuestion({ action: name, target, matched: probe.matched, more: probe.more })
    })

  const confirm = (q: Question) =>
    action.run(async () => {
      let changed = 0
      let answer: BulkResult
      do {
        answer = await api.bulk({ action: q.action, ...q.target })
        changed += answer.changed
      } while (answer.more && answer.changed > 0 && q.target.filter)
      setQuestion(undefined)
      setOutcome(`${VERBS[q.action].done} ${count(changed)} ${changed === 1 ? 'job' : 'jobs'}.`)
      props.onDone()
    })

  const scope = selected.length ? `${count(selected.length)} selected` : 'all matching'
  return (
    <fieldset class="bulk">
      <legend class="visually-hidden">Bulk actions</legend>
      <span class="muted">
        {selected.length ? `${count(selected.length)} selected` : 'None selected: acts on the filter'}
      </span>
      {(['cancel', 'retry', 'delete'] as const).map((name) => (
        <button
          key={name}
          type="button"
          class={name === 'delete' ? 'danger' : undefined}
          disabled={action.busy || (!filter && selected.length === 0)}
          onClick={() => ask(name)}
          data-testid={`bulk-${name}`}
        >
          {VERBS[name].verb} {scope}
        </button>
      ))}
      {outcome && (
        <span class="outcome" role="status" data-testid="bulk-result">
          {outcome}
        </span>
      )}
      <ErrorNote error={action.error} />
      {question && (
        <Confirm
          title={`${VERBS[question.action].verb} ${question.more ? 'at least ' : ''}${count(question.matched)} ${question.matched === 1 ? 'job' : 'jobs'}?`}
          confirmLabel={`${VERBS[question.action].verb} ${count(question.matched)}${question.more ? '+' : ''}`}
          danger={question.action !== 'retry'}
          busy={action.busy}
          onCancel={() => setQuestion(undefined)}
          onConfirm={() => confirm(question)}
        >
          <p>
            <strong data-testid="confirm-count">{count(question.matched)}</strong>
            {question.more ? ' or more' : ''} {question.matched === 1 ? 'job' : 'jobs'}{' '}
            {question.target.ids
              ? `of the ${count(question.target.ids.length)} selected`
              : `matching ${describeFilter(question.target.filter ?? {})}`}{' '}
            {question.matched === 1 ? 'is' : 'are'} {VERBS[question.action].applies}.
          </p>
          {question.action === 'delete' && <p>Deleted jobs and their runs cannot be brought back.</p>}
          {question.more && <p>They are processed in batches of 10,000 until none is left.</p>}
        </Confirm>
      )}
    </fieldset>
  )
}
