/**
 * Plans of the statements the app really sends. A statement function (runClaim,
 * jobList, …) is run once on a client that records the text and parameters it
 * sends, in a transaction that is rolled back; the recorded statement is then
 * re-run as EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) with the same parameters, in
 * another rolled-back transaction. EXPLAIN ANALYZE executes data-modifying CTEs,
 * so explaining a claim or a completion must never commit.
 *
 * Going through the functions (not copies of their SQL) keeps the plans honest
 * while the statements change.
 */
import { createSql, type Sql } from '../../src/db/client'

/** One statement as the client built it: text, parameters as passed (before serialisation), their type oids (0: left to the server). */
export interface CapturedQuery {
  text: string
  params: unknown[]
  types: number[]
  /**
   * The parameters as sent: text, or null. postgres.js serialises its parameter
   * array in place when it binds, so this (that very array) holds the wire values
   * once the statement has run.
   */
  wire: unknown[]
}

/** A node of an EXPLAIN (FORMAT JSON) plan: the fields read here, and the rest as Postgres gives them. */
export interface PlanNode {
  'Node Type': string
  'Actual Rows'?: number
  'Actual Loops'?: number
  'Rows Removed by Filter'?: number
  'Rows Removed by Index Recheck'?: number
  'Index Name'?: string
  'Relation Name'?: string
  'Subplan Name'?: string
  'Sort Method'?: string
  'Shared Hit Blocks'?: number
  'Shared Read Blocks'?: number
  Plans?: PlanNode[]
  [key: string]: unknown
}

/** The top-level object of EXPLAIN (FORMAT JSON) output. */
export interface ExplainOutput {
  Plan: PlanNode
  'Planning Time'?: number
  'Execution Time'?: number
  Triggers?: { 'Trigger Name': string; Relation?: string; Time: number; Calls: number }[]
  [key: string]: unknown
}

/** A Sort (or Incremental Sort) node and how many rows it was fed. */
export interface SortSeen {
  nodeType: string
  /** Rows out of its input (Actual Rows × Actual Loops of its child). */
  inputRows: number
  method?: string
}

/** A node that read a table or an index, and how many rows it touched. */
export interface ScanSeen {
  nodeType: string
  relation?: string
  index?: string
  rowsTouched: number
}

/** What the plan of one execution says about its cost, in units that do not depend on the machine. */
export interface PlanSummary {
  query: CapturedQuery
  output: ExplainOutput
  plan: PlanNode
  /**
   * Σ over every node of (Actual Rows + Rows Removed by Filter + Rows Removed by
   * Index Recheck) × Actual Loops. Postgres reports rows and removed rows per loop,
   * hence the loops. A node and its parent both count the rows passed up, so read
   * it as a size, not as a count of distinct rows.
   */
  rowsTouched: number
  /**
   * The part of rowsTouched read from tables and indexes: Σ over scan nodes only
   * (Seq, Index, Index Only, Bitmap, Tid scans). Joins, CTE scans and materialised
   * rescans only re-handle rows these produced, so this is the part a backlog can grow.
   */
  rowsRead: number
  /** Shared buffers hit + read by the execution (the root node counts its whole tree). */
  buffers: number
  nodeTypes: string[]
  sorts: SortSeen[]
  /** Every node that names a relation or an index. */
  scans: ScanSeen[]
  indexes: string[]
  /** Relations read by a Seq Scan. */
  seqScans: string[]
  executionMs: number
  planningMs: number
  /** Whether this is the generic plan (planned without the parameter values). */
  generic: boolean
}

/** Every node of a plan, depth first (CTEs, InitPlans and SubPlans are in Plans too). */
export function planNodes(plan: PlanNode): PlanNode[] {
  return [plan, ...(plan.Plans ?? []).flatMap(planNodes)]
}

/** Rows one node touched over all its loops. */
export function nodeRowsTouched(n: PlanNode): number {
  const perLoop =
    (n['Actual Rows'] ?? 0) + (n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)
  return perLoop * (n['Actual Loops'] ?? 1)
}

/** The subtree of a CTE or subplan by name (e.g. "CTE picked"), or undefined. */
export function subplan(plan: PlanNode, name: string): PlanNode | undefined {
  return planNodes(plan).find((n) => n['Subplan Name'] === name)
}

/** Node types that read a table or an index. */
const SCAN_NODES = new Set([
  'Seq Scan',
  'Index Scan',
  'Index Only Scan',
  'Bitmap Heap Scan',
  'Bitmap Index Scan',
  'Tid Scan',
  'Tid Range Scan',
  'Sample Scan',
])

/** Summarises a plan (or a subtree of one) by the numbers PlanSummary describes. */
export function summarise(
  plan: PlanNode,
): Pick<
  PlanSummary,
  'rowsTouched' | 'rowsRead' | 'buffers' | 'nodeTypes' | 'sorts' | 'scans' | 'indexes' | 'seqScans'
> {
  const all = planNodes(plan)
  const sorts = all
    .filter((n) => n['Node Type'] === 'Sort' || n['Node Type'] === 'Incremental Sort')
    .map((n) => {
      const input = n.Plans?.[0]
      return {
        nodeType: n['Node Type'],
        inputRows: input ? (input['Actual Rows'] ?? 0) * (input['Actual Loops'] ?? 1) : 0,
        method: n['Sort Method'],
      }
    })
  const scans = all
    .filter((n) => n['Relation Name'] !== undefined || n['Index Name'] !== undefined)
    .map((n) => ({
      nodeType: n['Node Type'],
      relation: n['Relation Name'],
      index: n['Index Name'],
      rowsTouched: nodeRowsTouched(n),
    }))
  return {
    // Postgres 18 reports rows per loop with decimals; whole rows read better.
    rowsTouched: Math.round(all.reduce((sum, n) => sum + nodeRowsTouched(n), 0)),
    rowsRead: Math.round(
      all.filter((n) => SCAN_NODES.has(n['Node Type'])).reduce((sum, n) => sum + nodeRowsTouched(n), 0),
    ),
    buffers: (plan['Shared Hit Blocks'] ?? 0) + (plan['Shared Read Blocks'] ?? 0),
    nodeTypes: [...new Set(all.map((n) => n['Node Type']))].sort(),
    sorts,
    scans,
    indexes: [...new Set(scans.flatMap((s) => (s.index ? [s.index] : [])))].sort(),
    seqScans: [...new Set(scans.filter((s) => s.nodeType === 'Seq Scan').map((s) => s.relation ?? '?'))].sort(),
  }
}

/** Thrown to roll a transaction back; never escapes this module. */
class Rollback extends Error {}

/** Runs `fn` in a transaction that is always rolled back; answers what `fn` answered. */
export async function rolledBack<T>(sql: Sql, fn: (tx: Sql) => Promise<T>): Promise<T> {
  let out: T | undefined
  try {
    await sql.begin(async (tx) => {
      // A transaction client takes the same tagged queries as a pool.
      out = await fn(tx as unknown as Sql)
      throw new Rollback()
    })
  } catch (err) {
    if (!(err instanceof Rollback)) throw err
  }
  return out as T
}

/** The plans of one call of a statement function: one per statement it sent, and their sums. */
export interface CallSummary {
  statements: PlanSummary[]
  /** Σ rowsTouched of its statements. */
  rowsTouched: number
  /** Σ rowsRead of its statements. */
  rowsRead: number
  /** Σ buffers of its statements. */
  buffers: number
  nodeTypes: string[]
  sorts: SortSeen[]
  scans: ScanSeen[]
  indexes: string[]
  seqScans: string[]
  executionMs: number
  /** How many of its statements were explained with their generic plan. */
  genericPlans: number
}

/** Sums the plans of the statements one call sent. */
export function combine(statements: PlanSummary[]): CallSummary {
  const union = (pick: (s: PlanSummary) => string[]) => [...new Set(statements.flatMap(pick))].sort()
  return {
    statements,
    rowsTouched: statements.reduce((sum, s) => sum + s.rowsTouched, 0),
    rowsRead: statements.reduce((sum, s) => sum + s.rowsRead, 0),
    buffers: statements.reduce((sum, s) => sum + s.buffers, 0),
    nodeTypes: union((s) => s.nodeTypes),
    sorts: statements.flatMap((s) => s.sorts),
    scans: statements.flatMap((s) => s.scans),
    indexes: union((s) => s.indexes),
    seqScans: union((s) => s.seqScans),
    executionMs: statements.reduce((sum, s) => sum + s.executionMs, 0),
    genericPlans: statements.filter((s) => s.generic).length,
  }
}

/** A plan as an indented text tree: node, relation/index, rows × loops, rows removed. */
export function formatPlan(plan: PlanNode, depth = 0): string {
  const n = plan
  const what = [n['Subplan Name'], n['Node Type'], n['Relation Name'] && `on ${n['Relation Name']}`]
    .concat(n['Index Name'] ? [`using ${n['Index Name']}`] : [])
    .filter(Boolean)
    .join(' ')
  const removed = (n['Rows Removed by Filter'] ?? 0) + (n['Rows Removed by Index Recheck'] ?? 0)
  const line = `${'  '.repeat(depth)}${what}  rows=${n['Actual Rows'] ?? '?'} loops=${n['Actual Loops'] ?? '?'}${
    removed ? ` removed=${removed}` : ''
  }`
  return [line, ...(n.Plans ?? []).map((c) => formatPlan(c, depth + 1))].join('\n')
}

/** Planner settings for one EXPLAIN (`set local`, so they end with its transaction), e.g. { enable_seqscan: 'off' }. */
export type PlannerSettings = Record<string, string>

/** How to explain: planner settings, and whether to explain the generic plan. */
export interface PlanOptions {
  settings?: PlannerSettings
  /**
   * Explain the generic plan (PREPARE, plan_cache_mode = force_generic_plan,
   * EXPLAIN EXECUTE) instead of one planned for these values. postgres.js
   * prepares every statement, and after five executions Postgres may keep a
   * generic plan, which the claim relies on (src/runs/sql.ts claimCtes).
   */
  generic?: boolean
}

/** Which statements of a call to explain, and how. */
export interface ExplainOptions extends PlanOptions {
  pick?: (q: CapturedQuery) => boolean
  /**
   * Explain the plan Postgres settles on instead: call `run` this many times first
   * (each rolled back) on the explaining connection, then explain each statement
   * generic if Postgres switched it to a generic plan (pg_prepared_statements), as
   * a pool connection would after as many calls. The calls run without
   * `settings` (the choice must be Postgres' own); the explain then uses them.
   * Overrides `generic`.
   */
  settle?: number
}

/** Explains statements sent by statement functions; one connection, so its transactions are its own. */
export interface Explainer {
  /** The recording client (a pool of one). */
  sql: Sql
  /** Runs `run` on the recording client in a rolled-back transaction; answers the statements it sent. */
  capture(run: (sql: Sql) => Promise<unknown>): Promise<CapturedQuery[]>
  /** EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) of a captured statement, in a rolled-back transaction. */
  explain(query: CapturedQuery, options?: PlanOptions): Promise<PlanSummary>
  /**
   * Captures what one call of `run` sends and explains every statement of it (or
   * those `pick` chooses). Nothing either execution does is committed. Each
   * statement is explained against the tables as they were before the call: right
   * for a call of one statement, or of several reads (jobsChangedSince).
   */
  explainCall(run: (sql: Sql) => Promise<unknown>, options?: ExplainOptions): Promise<CallSummary>
  close(): Promise<void>
}

/**
 * An Explainer on `url`. The client is the app's own (createSql: same type
 * parsers and session settings), with postgres.js' `debug` hook set on its
 * options, which every connection reads when it builds a query.
 */
export function createExplainer(url: string): Explainer {
  const sql = createSql({ url, max: 1, applicationName: 'foreman-explain' })
  let recording: CapturedQuery[] | null = null
  sql.options.debug = (_connection, text, parameters, types) => {
    // Copies: postgres.js serialises the parameters in place when it binds them.
    recording?.push({ text, params: [...parameters], types: [...types], wire: parameters })
  }

  const capture = async (run: (sql: Sql) => Promise<unknown>) => {
    const seen: CapturedQuery[] = []
    await rolledBack(sql, async (tx) => {
      recording = seen
      try {
        await run(tx)
      } finally {
        recording = null
      }
    })
    return seen
  }

  let prepared = 0
  const explain = async (
    query: CapturedQuery,
    { settings = {}, generic = false }: PlanOptions = {},
  ): Promise<PlanSummary> => {
    // The same values with the same client-side types (json stays json, booleans
    // booleans); untyped ones are typed by the server from the same text, as before.
    const params = query.params.map((value, i) => {
      const type = query.types[i] ?? 0
      return type ? sql.typed(value as never, type) : value
    })
    const name = `foreman_explain_${prepared++}`
    const args = (list: string[]) => (list.length > 0 ? ` (${list.join(', ')})` : '')
    const output = await rolledBack(sql, async (tx) => {
      for (const [key, value] of Object.entries(settings)) await tx`select set_config(${key}, ${value}, true)`
      let text = query.text
      if (generic) {
        // Typed as the client typed them; the rest left to the server, as in a Parse.
        const [named] = await tx<{ types: string[] }[]>`
          select coalesce(array_agg(case when t = 0 then 'unknown' else format_type(t, null) end order by i), '{}') as types
          from unnest(${query.types}::oid[]) with ordinality as u(t, i)`
        await tx.unsafe(`prepare ${name}${args(named?.types ?? [])} as ${query.text}`)
        // EXECUTE takes no bound parameters (Postgres cannot type them there), so the
        // values go in as literals of the very text the client sent.
        const literal = (v: unknown) => (v === null ? 'null' : `'${String(v).replaceAll("'", "''")}'`)
        await tx`select set_config('plan_cache_mode', 'force_generic_plan', true)`
        text = `execute ${name}${args(query.wire.map(literal))}`
      }
      const [row] = await tx.unsafe(
        `explain (analyze, buffers, format json) ${text}`,
        generic ? [] : (params as never[]),
      )
      return (row?.['QUERY PLAN'] as ExplainOutput[] | undefined)?.[0]
    }).finally(async () => {
      // A prepared statement outlives the transaction that made it, even rolled back.
      if (generic) await sql.unsafe(`deallocate ${name}`).catch(() => {})
    })
    if (!output) throw new Error(`EXPLAIN answered nothing for: ${query.text.slice(0, 200)}`)
    return {
      generic,
      query,
      output,
      plan: output.Plan,
      ...summarise(output.Plan),
      executionMs: output['Execution Time'] ?? Number.NaN,
      planningMs: output['Planning Time'] ?? Number.NaN,
    }
  }

  return {
    sql,
    capture,
    explain,
    async explainCall(run, options = {}) {
      const sent = await capture(run)
      const chosen = options.pick ? sent.filter(options.pick) : sent
      if (chosen.length === 0) throw new Error(`nothing to explain: the call sent ${sent.length} statements`)
      let generic = (_q: CapturedQuery) => options.generic ?? false
      if (options.settle) {
        // Rehearsed as the app runs them, without `settings`: the choice is Postgres' own.
        for (let i = 0; i < options.settle; i++) await rolledBack(sql, run)
        const settled = await sql<{ statement: string }[]>`
          select statement from pg_prepared_statements
          where generic_plans > 0 and statement = any(${chosen.map((q) => q.text)}::text[])`
        const texts = new Set(settled.map((r) => r.statement))
        generic = (q) => texts.has(q.text)
      }
      const plans: PlanSummary[] = []
      for (const q of chosen) plans.push(await explain(q, { settings: options.settings, generic: generic(q) }))
      return combine(plans)
    },
    close: () => sql.end({ timeout: 5 }),
  }
}
