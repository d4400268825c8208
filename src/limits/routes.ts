/** HTTP controller for flow-control limits per kind. */
import { Elysia, t } from 'elysia'
import type { Deps } from '../deps'
import { ErrorBody, refuseUnknownFields } from '../http/schema'
import {
  DEFAULT_KEYS_LIMIT,
  Limits,
  LimitsBody,
  LimitsDeleted,
  LimitsDetail,
  LimitsGetQuery,
  LimitsParams,
  MAX_KEYS_LIMIT,
  MAX_RATE_SECONDS,
} from './model'
import { deleteLimits, getLimits, listLimits, setLimits } from './service'

const tags = ['limits']

/** PUT, GET and DELETE /limits/:kind, and GET /limits. */
export const limitRoutes = (deps: Deps) =>
  new Elysia()
    .put('/limits/:kind', ({ params, body }) => setLimits(deps, params.kind, body), {
      transform: ({ body }) => refuseUnknownFields(body, LimitsBody),
      params: LimitsParams,
      body: LimitsBody,
      response: { 200: Limits, 400: ErrorBody },
      detail: {
        tags,
        summary: "Set a kind's limits",
        description: `A full replace: the limits given (at least one of \`max_active\`, \`max_active_per_key\`, \`rate\`, \`rate_per_key\`) take the place of any the kind had, and a field left out is no limit of that sort. \`max_active\` and \`max_active_per_key\` are integers ≥ 0; a rate is \`{"limit": n, "per_seconds": s}\` with limit ≥ 1 and per_seconds 1–${MAX_RATE_SECONDS}. Unknown fields are refused. Answers the stored limits (null for none).`,
      },
    })
    .get('/limits', () => listLimits(deps), {
      response: { 200: t.Array(Limits) },
      detail: { tags, summary: 'List limits', description: 'Every kind that has limits, by kind.' },
    })
    .get('/limits/:kind', ({ params, query }) => getLimits(deps, params.kind, query), {
      params: LimitsParams,
      query: LimitsGetQuery,
      response: { 200: LimitsDetail, 400: ErrorBody, 404: ErrorBody },
      detail: {
        tags,
        summary: "Get a kind's limits and where the kind stands",
        description: `The stored limits (as PUT answers them), plus the kind's running (\`active\`) and \`pending\` flow-controlled jobs, its \`rate\` window (claims in the window and, when it is full, \`opens_at\`: when it next has room), and its busy keys: each with running and pending jobs, its \`rate_per_key\` window and \`last_served_at\`, the busiest first (active, then pending, then key; jobs without a key are \`key: null\`). \`keys_limit\` (1–${MAX_KEYS_LIMIT}, default ${DEFAULT_KEYS_LIMIT}) bounds the list; \`keys_more\` says whether it left keys out. Counts are exact: the read visits each pending job of the kind once (about 50 ms for 100,000). 404 when the kind has no limits.`,
      },
    })
    .delete('/limits/:kind', ({ params }) => deleteLimits(deps, params.kind), {
      params: LimitsParams,
      response: { 200: LimitsDeleted, 400: ErrorBody, 404: ErrorBody },
      detail: {
        tags,
        summary: "Remove a kind's limits",
        description: 'Answers `{"kind"}`; 404 when the kind has none.',
      },
    })
