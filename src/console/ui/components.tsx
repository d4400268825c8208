/** Small building blocks every page uses. */
import type { ComponentChildren } from 'preact'
import { useEffect, useRef } from 'preact/hooks'
import { ago, dateTime, pretty } from './format'
import { href, linkClick } from './router'

/** A link to a console path that navigates in place. */
export function Link(props: { to: string; children: ComponentChildren; class?: string; testid?: string }) {
  return (
    <a href={href(props.to)} onClick={linkClick(props.to)} class={props.class} data-testid={props.testid}>
      {props.children}
    </a>
  )
}

/** A job or run status as a coloured badge. */
export function Status(props: { status: string; testid?: string }) {
  return (
    <span class={`badge status-${props.status}`} data-testid={props.testid}>
      {props.status}
    </span>
  )
}

/** A timestamp as "3m ago", the exact time on hover. */
export function Time(props: { at: string | null | undefined }) {
  if (!props.at) return <span class="muted">—</span>
  return (
    <time dateTime={props.at} title={dateTime(props.at)}>
      {ago(props.at)}
    </time>
  )
}

/** Progress of a run: a bar when the total is known, else the current count. */
export function Progress(props: { current: number | null; total: number | null; message?: string | null }) {
  const { current, total, message } = props
  if (current === null && !message) return <span class="muted">—</span>
  const share = current !== null && total ? Math.min(1, Math.max(0, current / total)) : null
  const label = [current !== null && (total ? `${current} / ${total}` : `${current}`), message]
    .filter(Boolean)
    .join(' · ')
  return (
    <div class="progress-cell">
      {share !== null && (
        <div
          class="progress"
          role="progressbar"
          aria-label="Run progress"
          aria-valuemin={0}
          aria-valuemax={total ?? 0}
          aria-valuenow={current ?? 0}
          data-testid="progress"
        >
          <div class="progress-fill" style={{ width: `${Math.round(share * 100)}%` }} />
        </div>
      )}
      <span class="progress-label">{label}</span>
    </div>
  )
}

/** JSON, indented. */
export function Json(props: { value: unknown; testid?: string }) {
  return (
    <pre class="json" data-testid={props.testid}>
      {pretty(props.value)}
    </pre>
  )
}

/** A failed call's message. */
export function ErrorNote(props: { error: string | undefined }) {
  if (!props.error) return null
  return (
    <p class="error-note" role="alert" data-testid="error-note">
      {props.error}
    </p>
  )
}

/** Shown while a first answer is on its way (nothing once it failed: the error says so). */
export const Loading = (props: { error?: string }) => (props.error ? null : <p class="muted">Loading…</p>)

/**
 * A modal confirmation (a native <dialog>: focus stays inside, Escape cancels).
 * Rendered only while a question is open.
 */
export function Confirm(props: {
  title: string
  children: ComponentChildren
  confirmLabel: string
  danger?: boolean
  busy?: boolean
  onConfirm: () => void
  onCancel: () => void
}) {
  const ref = useRef<HTMLDialogElement>(null)
  useEffect(() => {
    const dialog = ref.current
    if (dialog && !dialog.open) dialog.showModal()
    return () => dialog?.close()
  }, [])
  return (
    <dialog
      ref={ref}
      class="confirm"
      aria-labelledby="confirm-title"
      data-testid="confirm-dialog"
      onCancel={(e) => {
        e.preventDefault()
        props.onCancel()
      }}
    >
      <h2 id="confirm-title">{props.title}</h2>
      <div data-testid="confirm-message">{props.children}</div>
      <div class="actions">
        <button type="button" onClick={props.onCancel} data-testid="confirm-cancel">
          Cancel
        </button>
        <button
          type="button"
          class={props.danger ? 'danger' : 'primary'}
          disabled={props.busy}
          onClick={props.onConfirm}
          data-testid="confirm-ok"
        >
          {props.confirmLabel}
        </button>
      </div>
    </dialog>
  )
}

/** A page's heading with room for actions on the right. */
export function PageHeader(props: { title: string; children?: ComponentChildren }) {
  return (
    <div class="page-header">
      <h1 id="page-title">{props.title}</h1>
      {props.children && <div class="actions">{props.children}</div>}
    </div>
  )
}
