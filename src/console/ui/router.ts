/** Client-side routing under /foreman/ui: the server answers every path there with the same page. */
import { createStore } from './store'

/** Where the console lives. */
export const UI_BASE = '/foreman/ui'

/** The current location inside the console: `path` without UI_BASE (`/`, `/jobs/job_…`) and the query. */
export interface Location {
  path: string
  query: URLSearchParams
}

function read(): Location {
  const path = location.pathname.startsWith(UI_BASE) ? location.pathname.slice(UI_BASE.length) : '/'
  return { path: path.replace(/\/+$/, '') || '/', query: new URLSearchParams(location.search) }
}

export const route = createStore<Location>(read())
addEventListener('popstate', () => route.set(read()))

/** The full URL of a console path. */
export const href = (path: string) => `${UI_BASE}${path === '/' ? '/' : path}`

/** Goes to a console path (`/jobs?status=failed`) without a reload; `replace` keeps history short for filter edits. */
export function navigate(path: string, replace = false): void {
  if (replace) history.replaceState(null, '', href(path))
  else history.pushState(null, '', href(path))
  route.set(read())
  if (!replace) scrollTo(0, 0)
}

/** A click handler for links: plain left clicks navigate in place; others keep the browser's behaviour. */
export function linkClick(path: string) {
  return (event: MouseEvent) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return
    event.preventDefault()
    navigate(path)
  }
}
