/**
 * The shape of an enqueue with dependencies, checked before anything is stored:
 * refs unique, every `depends_on` entry a ref of the same batch or a job id, no
 * cycle; and the order to decide the nodes in (each after the nodes it depends on).
 */
import { InvalidInput } from '../errors'
import { idPattern } from '../ids'

/** One job of the enqueue, as the caller gave it. */
export interface GraphItem {
  ref?: string
  depends_on?: string[]
}

/** A node's dependencies, resolved: other nodes of the batch (by position) and stored jobs (by id). */
export interface NodeEdges {
  batchParents: number[]
  storedParents: string[]
}

/** The checked graph: each node's edges, and an order in which every node comes after its parents. */
export interface CheckedGraph {
  edges: NodeEdges[]
  order: number[]
}

const JOB_ID = new RegExp(idPattern('job_'))

/**
 * Checks the items' refs and dependencies; `field(i)` names item i in a refusal
 * (`jobs.3.` in a batch, `` for POST /jobs). A 400 names the first problem:
 * a repeated ref, an entry that is neither a ref of the batch nor a job id, or a
 * ref on a cycle (a job that would wait on itself).
 */
export function checkGraph(items: GraphItem[], field: (i: number) => string): CheckedGraph {
  const byRef = new Map<string, number>()
  items.forEach((item, i) => {
    if (item.ref === undefined) return
    const first = byRef.get(item.ref)
    if (first !== undefined) {
      throw new InvalidInput(`${field(i)}ref`, `${JSON.stringify(item.ref)} is already the ref of ${field(first)}`)
    }
    byRef.set(item.ref, i)
  })
  const edges = items.map((item, i): NodeEdges => {
    const batchParents = new Set<number>()
    const storedParents = new Set<string>()
    item.depends_on?.forEach((entry, k) => {
      const parent = byRef.get(entry)
      if (parent !== undefined) batchParents.add(parent)
      else if (JOB_ID.test(entry)) storedParents.add(entry)
      else {
        throw new InvalidInput(
          `${field(i)}depends_on.${k}`,
          `${JSON.stringify(entry)} is neither a ref of this batch nor a job id`,
        )
      }
    })
    return { batchParents: [...batchParents], storedParents: [...storedParents] }
  })
  return { edges, order: topologicalOrder(items, edges, field) }
}

/** Kahn's order over the batch edges; what is left over lies on or behind a cycle. */
function topologicalOrder(items: GraphItem[], edges: NodeEdges[], field: (i: number) => string): number[] {
  const children = items.map((): number[] => [])
  const unresolved = edges.map((e) => e.batchParents.length)
  edges.forEach((e, i) => {
    for (const parent of e.batchParents) children[parent]?.push(i)
  })
  const order: number[] = []
  const ready = unresolved.flatMap((n, i) => (n === 0 ? [i] : []))
  while (ready.length > 0) {
    const next = ready.pop() as number
    order.push(next)
    for (const child of children[next] ?? []) {
      unresolved[child] = (unresolved[child] ?? 0) - 1
      if (unresolved[child] === 0) ready.push(child)
    }
  }
  if (order.length < items.length) throw cycleError(items, edges, unresolved, field)
  return order
}

/** A 400 naming a ref on a cycle, and the cycle itself. */
function cycleError(
  items: GraphItem[],
  edges: NodeEdges[],
  unresolved: number[],
  field: (i: number) => string,
): InvalidInput {
  // Walk back along parents that are still unresolved: in a finite graph the walk
  // must repeat a node, and the nodes from its first visit on form a cycle.
  let at = unresolved.findIndex((n) => n > 0)
  const path: number[] = []
  while (!path.includes(at)) {
    path.push(at)
    at = edges[at]?.batchParents.find((p) => (unresolved[p] ?? 0) > 0) ?? at
  }
  const cycle = path.slice(path.indexOf(at))
  const names = cycle.map((i) => items[i]?.ref ?? String(i))
  return new InvalidInput(
    `${field(at)}depends_on`,
    `ref ${JSON.stringify(items[at]?.ref)} depends on itself through ${[...names, names[0]].join(' ← ')} (a cycle)`,
  )
}
