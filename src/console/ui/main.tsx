/** The console's entry: the frame (navigation, connection state, token prompt) and the page for the path. */
import { render } from 'preact'
import { useErrorBoundary, useState } from 'preact/hooks'
import { setToken, tokenPrompt } from './api'
import { Link } from './components'
import { connection, startLive } from './live'
import { JobPage } from './pages/job'
import { JobsPage } from './pages/jobs'
import { OverviewPage } from './pages/overview'
import { QueuesPage } from './pages/queues'
import { SchedulesPage } from './pages/schedules'
import { WorkersPage } from './pages/workers'
import { route } from './router'
import { useStore } from './store'

const SECTIONS = [
  { path: '/', name: 'Overview', testid: 'nav-overview' },
  { path: '/jobs', name: 'Jobs', testid: 'nav-jobs' },
  { path: '/queues', name: 'Queues', testid: 'nav-queues' },
  { path: '/workers', name: 'Workers', testid: 'nav-workers' },
  { path: '/schedules', name: 'Schedules', testid: 'nav-schedules' },
]

function CurrentPage() {
  const { path, query } = useStore(route)
  const job = /^\/jobs\/([^/]+)$/.exec(path)
  if (job?.[1]) return <JobPage id={decodeURIComponent(job[1])} />
  if (path === '/jobs') return <JobsPage query={query} />
  if (path === '/queues') return <QueuesPage />
  if (path === '/workers') return <WorkersPage />
  if (path === '/schedules') return <SchedulesPage />
  if (path === '/') return <OverviewPage />
  return (
    <p>
      No such page. <Link to="/">Back to the overview</Link>
    </p>
  )
}

/** A page that throws while rendering says so, instead of leaving the frame blank. */
function PageBoundary() {
  const [error, reset] = useErrorBoundary()
  if (error) {
    return (
      <div class="card" role="alert" data-testid="page-crashed">
        <p class="error-note">This page failed: {error instanceof Error ? error.message : String(error)}</p>
        <button type="button" onClick={reset}>
          Try again
        </button>
      </div>
    )
  }
  return <CurrentPage />
}

/** The live stream's state; a lost connection is said in words, not only by colour. */
function ConnectionState() {
  const { state, reason } = useStore(connection)
  const waiting = useStore(tokenPrompt) !== null
  const text =
    state === 'live'
      ? 'Live'
      : waiting
        ? 'Token needed'
        : state === 'connecting'
          ? 'Connecting…'
          : state === 'paused'
            ? 'Paused while hidden'
            : 'Connection lost'
  return (
    <span
      class={`connection connection-${state}`}
      data-testid="connection"
      data-state={state}
      role="status"
      title={reason}
    >
      {text}
    </span>
  )
}

function TokenPrompt(props: { message: string }) {
  const [value, setValue] = useState('')
  return (
    <form
      class="token-form card"
      data-testid="token-form"
      onSubmit={(e) => {
        e.preventDefault()
        setToken(value)
      }}
    >
      <h1>API token</h1>
      <p data-testid="token-message">{props.message}</p>
      <label>
        Token (kept for this browser session only)
        <input
          type="password"
          autocomplete="off"
          required
          value={value}
          onInput={(e) => setValue(e.currentTarget.value)}
          data-testid="token-input"
        />
      </label>
      <button type="submit" class="primary" data-testid="token-submit">
        Use token
      </button>
    </form>
  )
}

function App() {
  const { path } = useStore(route)
  const prompt = useStore(tokenPrompt)
  const lost = useStore(connection).state === 'lost'
  return (
    <>
      <header class="top">
        <Link to="/" class="brand">
          Foreman
        </Link>
        <nav aria-label="Sections">
          {SECTIONS.map((s) => {
            const current = s.path === '/' ? path === '/' : path === s.path || path.startsWith(`${s.path}/`)
            return (
              <Link key={s.path} to={s.path} testid={s.testid} class={current ? 'current' : undefined}>
                {s.name}
              </Link>
            )
          })}
        </nav>
        <ConnectionState />
      </header>
      {lost && !prompt && (
        <p class="banner" role="alert" data-testid="connection-lost">
          The live connection to Foreman was lost; reconnecting. Changes made meanwhile will be replayed.
        </p>
      )}
      <main>{prompt ? <TokenPrompt message={prompt} /> : <PageBoundary />}</main>
    </>
  )
}

const root = document.getElementById('app')
if (root) {
  render(<App />, root)
  startLive()
}
