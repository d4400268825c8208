/**
 * Enqueue with dependencies: POST /jobs with `depends_on`, and POST /jobs/batch
 * when any item has `ref` or `depends_on` (a whole graph in one call).
 *
 * One transaction: find the jobs already holding the nodes' keys (those nodes
 * create nothing, and their stored edges stand), lock the stored dependencies
 * while appending the new jobs to their `dependents`, decide each new job's
 * status from its dependencies in graph order, insert. Nothing is stored unless
 * all of it is.
 */
import { afterCommit } from '../after-commit'
import type { Queryable } from '../db/client'
import type { Deps } from '../deps'
import { InvalidInput } from '../errors'
import type { EnqueueBatchItem, Job } from '../jobs/model'
import type { JobInsert } from '../jobs/sql'
import { recordEnqueued, recordJobTerminal } from '../metrics/record'
import { type GraphRow, graphInserted, keyHolders, type NodeKey, parentsLocked } from './enqueue-sql'
import { checkGraph } from './graph'

/** One answered node, in input order. */
export interface GraphEnqueued {
  created: boolean
  job: Job
}

/** A node's row before its status is decided (the insert's fields, defaults applied). */
export type GraphNode = JobInsert & {
  dependsOn: string[]
  uniqueWhileActive: boolean
  onDependencyFailure: 'run' | null
}

/** Attempts before giving up on a graph whose keys keep being taken by concurrent enqueues. */
const MAX_GRAPH_ATTEMPTS = 5

/** Thrown inside the transaction to roll it back and start again (a key was taken meanwhile). */
class KeyTakenMeanwhile extends Error {}

/**
 * Enqueues `items` (with their rows `nodes`, same order) as a graph; answers each
 * item's job in input order and the refs' ids. `field(i)` names item i in a refusal.
 */
export async function enqueueGraph(
  deps: Deps,
  items: EnqueueBatchItem[],
  nodes: GraphNode[],
  field: (i: number) => string,
): Promise<{ answers: GraphEnqueued[]; refs: Record<string, string> }> {
  items.forEach((item, i) => {
    if (item.debounce_seconds !== undefined) {
      throw new InvalidInput(`${field(i)}debounce_seconds`, 'cannot be combined with depends_on or ref')
    }
  })
  const graph = checkGraph(items, field)
  for (let attempt = 1; ; attempt++) {
    try {
      const answers = await afterCommit(deps, async (effects) => {
        const answers = (await deps.sql.begin((tx) =>
          decideAndInsert(deps, tx, nodes, graph, field),
        )) as GraphEnqueued[]
        const created = answers.filter((a) => a.created).map((a) => a.job)
        effects.announce(created)
        effects.count((m) => {
          for (const a of answers) recordEnqueued(m, a.job, a.created)
          for (const job of created) recordJobTerminal(m, job)
        })
        return answers
      })
      const refs: Record<string, string> = {}
      items.forEach((item, i) => {
        const answer = answers[i]
        if (item.ref !== undefined && answer) refs[item.ref] = answer.job.id
      })
      return { answers, refs }
    } catch (err) {
      if (!(err instanceof KeyTakenMeanwhile) || attempt >= MAX_GRAPH_ATTEMPTS) throw err
    }
  }
}

async function decideAndInsert(
  deps: Deps,
  tx: Queryable,
  nodes: GraphNode[],
  graph: ReturnType<typeof checkGraph>,
  field: (i: number) => string,
): Promise<GraphEnqueued[]> {
  const { tables } = deps
  // 1. Nodes whose key is held already (stored, or by an earlier node of the batch).
  const keyOf = (n: GraphNode): NodeKey | null =>
    n.idempotencyKey === null ? null : { kind: n.kind, key: n.idempotencyKey, active: n.uniqueWhileActive }
  const keyText = (k: NodeKey) => JSON.stringify([k.kind, k.key, k.active])
  const keys = nodes.map(keyOf)
  const holders = await keyHolders(
    tx,
    tables,
    keys.filter((k): k is NodeKey => k !== null),
  )
  const held = new Map<string, Job>()
  for (const { unique_while_active, ...job } of holders) {
    held.set(keyText({ kind: job.kind, key: job.idempotency_key ?? '', active: unique_while_active === true }), job)
  }
  const firstWithKey = new Map<string, number>()
  /** Per node: the stored job it resolves to, or the earlier node it repeats, or neither (new). */
  const existing: (Job | null)[] = nodes.map(() => null)
  const repeats: (number | null)[] = nodes.map(() => null)
  keys.forEach((k, i) => {
    if (!k) return
    const text = keyText(k)
    existing[i] = held.get(text) ?? null
    const first = firstWithKey.get(text)
    if (existing[i] === null && first !== undefined) repeats[i] = first
    else firstWithKey.set(text, i)
  })
  const isNew = (i: number) => existing[i] === null && repeats[i] === null
  const idOf = (i: number): string => {
    const repeated = repeats[i]
    if (repeated !== null && repeated !== undefined) return idOf(repeated)
    return existing[i]?.id ?? (nodes[i] as GraphNode).id
  }

  // 2. Lock the stored dependencies of the new nodes (stored ids, and batch nodes
  // that resolved to stored jobs), appending the new nodes to their dependents.
  const childrenOf = new Map<string, string[]>()
  graph.edges.forEach((e, i) => {
    if (!isNew(i)) return
    const stored = [...e.storedParents, ...e.batchParents.filter((p) => !isNew(p)).map(idOf)]
    for (const parent of new Set(stored)) childrenOf.set(parent, [...(childrenOf.get(parent) ?? []), idOf(i)])
  })
  const locked = await parentsLocked(
    tx,
    tables,
    [...childrenOf].map(([id, children]) => ({ id, children })),
  )
  const storedStatus = new Map(locked.map((p) => [p.id, p.status]))
  graph.edges.forEach((e, i) => {
    if (!isNew(i)) return
    e.storedParents.forEach((id) => {
      if (!storedStatus.has(id)) {
        const k = nodes[i]?.dependsOn?.indexOf(id) ?? -1
        throw new InvalidInput(`${field(i)}depends_on.${k}`, `job ${id} not found`)
      }
    })
  })

  // 3. Decide each new node's status in graph order, from its parents'.
  const rows: (GraphRow | null)[] = nodes.map(() => null)
  const statusOf = (i: number): string => rows[i]?.status ?? storedStatus.get(idOf(i)) ?? existing[i]?.status ?? ''
  for (const i of graph.order) {
    if (!isNew(i)) continue
    const node = nodes[i] as GraphNode
    const e = graph.edges[i] as (typeof graph.edges)[number]
    const parents = [
      ...e.storedParents.map((id) => ({ id, status: storedStatus.get(id) ?? '' })),
      ...e.batchParents.map((p) => ({ id: idOf(p), status: statusOf(p) })),
    ]
    const unique = [...new Map(parents.map((p) => [p.id, p])).values()]
    const failedParent = unique.find((p) => p.status === 'failed' || p.status === 'cancelled')
    const runsAnyway = node.onDependencyFailure === 'run'
    const cause = failedParent && !runsAnyway ? `dependency ${failedParent.id} ${failedParent.status}` : null
    const open = unique.filter(
      (p) => p.status !== 'succeeded' && !(runsAnyway && (p.status === 'failed' || p.status === 'cancelled')),
    ).length
    const batchChildren = graph.edges.flatMap((c, j) => (isNew(j) && c.batchParents.includes(i) ? [idOf(j)] : []))
    rows[i] = {
      id: node.id,
      kind: node.kind,
      queue: node.queue,
      service: node.service,
      idempotency_key: node.idempotencyKey,
      unique_while_active: node.uniqueWhileActive ? true : null,
      concurrency_key: node.concurrencyKey,
      params: node.params,
      priority: node.priority,
      max_attempts: node.maxAttempts,
      scheduled_at: node.scheduledAt,
      status: cause ? 'cancelled' : open > 0 ? 'waiting' : 'pending',
      error: cause,
      depends_on: unique.length > 0 ? unique.map((p) => p.id) : null,
      dependents: batchChildren.length > 0 ? batchChildren : null,
      waiting_on: unique.length > 0 ? open : null,
      on_dependency_failure: runsAnyway ? 'run' : null,
      expires_in_seconds: node.expiresInSeconds ?? null,
      timeout_seconds: node.timeoutSeconds ?? null,
      flow_controlled: node.flowControlled,
    }
  }

  // 4. Insert the new nodes; a key taken since step 1 starts the whole graph again.
  const fresh = rows.filter((r): r is GraphRow => r !== null)
  const inserted = fresh.length > 0 ? await graphInserted(tx, tables, fresh) : []
  if (inserted.length < fresh.length) throw new KeyTakenMeanwhile()
  const byId = new Map<string, Job>(inserted.map((j) => [j.id, j]))
  const jobOf = (i: number): Job => {
    const repeated = repeats[i]
    if (repeated !== null && repeated !== undefined) return jobOf(repeated)
    return existing[i] ?? (byId.get(idOf(i)) as Job)
  }
  return nodes.map((_, i) => ({ created: isNew(i), job: jobOf(i) }))
}
