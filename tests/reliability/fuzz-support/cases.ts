/**
 * A fuzz case for one route, and how it becomes an HTTP request. Each case bends
 * one part of the request (the body, the query, the path id, or everything at once)
 * and keeps the others plausible, so a refusal of one part does not hide the
 * handling of another.
 */
import fc from 'fast-check'
import { anyJson, eventIdArb, idArb, validArb } from './gen-valid'
import {
  applyTextOp,
  contentTypeArb,
  injectBadUtf8,
  JUNK_IDS,
  JUNK_QUERY_SEGMENTS,
  JUNK_QUERY_VALUES,
  junkBodyArb,
  percentEncode,
  TEXT_OPS,
  type TextOp,
} from './junk'
import { applyMutations, type Mutation, mutationArb } from './mutate'
import { idPrefixOf, type Route, type Schema } from './openapi'
import { PoolRef, Raw, type Resolve, serialize, type Val } from './values'

/** How the body is built. */
export type BodyPlan =
  | { kind: 'none' }
  | { kind: 'value'; value: Val; mutations: Mutation[]; textOp?: { op: TextOp; n: number }; badUtf8?: number }
  | { kind: 'junk'; bytes: Uint8Array; label: string }

/** One query segment: a declared or junk parameter, or a raw segment. */
export type QuerySegment = { name: string; value: Val } | { raw: string }

/** Everything a case decides; resolved against the pool only when sent. */
export interface FuzzCase {
  focus: 'body' | 'query' | 'path' | 'mixed'
  method: string
  ids: Record<string, Val>
  query: QuerySegment[]
  body: BodyPlan
  contentType: string | null
  /** Chunk sizes when the body is streamed (Transfer-Encoding: chunked); null sends it whole. */
  chunks: number[] | null
  /** A Last-Event-ID header (GET /events resumes from it; other routes must ignore it). */
  lastEventId: string | null
}

/** A request ready to send. */
export interface Rendered {
  method: string
  url: string
  headers: Record<string, string>
  body?: Uint8Array
  chunks: number[] | null
  label: string
  /** The body as text (for echo checks and reports). */
  bodyText: string
}

const OTHER_METHODS = ['PATCH', 'OPTIONS', 'HEAD', 'PUT', 'DELETE', 'GET', 'POST']

function idChoice(schema: Schema, good: boolean): fc.Arbitrary<Val> {
  const prefix = idPrefixOf(schema) ?? 'job_'
  if (good) return idArb(prefix)
  const other = prefix === 'run_' ? 'job_' : prefix === 'job_' ? 'sched_' : 'run_'
  return fc.oneof(
    { arbitrary: idArb(prefix), weight: 3 },
    { arbitrary: idArb(other), weight: 1 },
    { arbitrary: fc.constantFrom(...JUNK_IDS).map((text): Val => new Raw(text, 'junk id')), weight: 3 },
    {
      arbitrary: fc.string({ unit: 'binary', maxLength: 40 }).map((s): Val => new Raw(percentEncode(s), 'random id')),
      weight: 1,
    },
  )
}

function queryArb(route: Route, good: boolean): fc.Arbitrary<QuerySegment[]> {
  const declared = route.query.map((p) =>
    fc.oneof(
      { arbitrary: fc.constant<QuerySegment | null>(null), weight: 3 },
      { arbitrary: validArb(p.schema, p.name).map((value): QuerySegment => ({ name: p.name, value })), weight: 2 },
      ...(good
        ? []
        : [
            {
              arbitrary: fc.constantFrom(...JUNK_QUERY_VALUES).map((v): QuerySegment => ({ raw: `${p.name}=${v}` })),
              weight: 2,
            },
          ]),
    ),
  )
  const extras = good
    ? fc.constant<QuerySegment[]>([])
    : fc.array(
        fc.oneof(
          fc.constantFrom(...JUNK_QUERY_SEGMENTS).map((raw): QuerySegment => ({ raw })),
          fc.string({ unit: 'binary', maxLength: 30 }).map((s): QuerySegment => ({ raw: percentEncode(s) })),
        ),
        { maxLength: 2 },
      )
  return fc
    .tuple(fc.tuple(...declared), extras)
    .map(([segments, more]) => [...segments.filter((s): s is QuerySegment => s !== null), ...more])
}

function bodyArb(route: Route, good: boolean): fc.Arbitrary<BodyPlan> {
  if (!route.body) {
    if (good) return fc.constant({ kind: 'none' })
    return fc.oneof(
      { arbitrary: fc.constant<BodyPlan>({ kind: 'none' }), weight: 2 },
      { arbitrary: junkBodyArb.map((j): BodyPlan => ({ kind: 'junk', ...j })), weight: 1 },
      { arbitrary: anyJson.map((value): BodyPlan => ({ kind: 'value', value, mutations: [] })), weight: 1 },
    )
  }
  const valid = validArb(route.body)
  if (good) return valid.map((value): BodyPlan => ({ kind: 'value', value, mutations: [] }))
  const mutations = fc.array(mutationArb, { minLength: 1, maxLength: 3 })
  return fc.oneof(
    { arbitrary: valid.map((value): BodyPlan => ({ kind: 'value', value, mutations: [] })), weight: 1 },
    {
      arbitrary: fc.tuple(valid, mutations).map(([value, ms]): BodyPlan => ({ kind: 'value', value, mutations: ms })),
      weight: 7,
    },
    {
      arbitrary: fc
        .tuple(valid, fc.array(mutationArb, { maxLength: 1 }), fc.constantFrom(...TEXT_OPS), fc.nat())
        .map(([value, ms, op, n]): BodyPlan => ({ kind: 'value', value, mutations: ms, textOp: { op, n } })),
      weight: 1,
    },
    {
      arbitrary: fc
        .tuple(valid, fc.nat())
        .map(([value, n]): BodyPlan => ({ kind: 'value', value, mutations: [], badUtf8: n })),
      weight: 1,
    },
    { arbitrary: junkBodyArb.map((j): BodyPlan => ({ kind: 'junk', ...j })), weight: 1 },
  )
}

/** Cases for `route`. */
export function caseArb(route: Route): fc.Arbitrary<FuzzCase> {
  const sendsBody = route.method !== 'GET' && route.method !== 'HEAD'
  const ids = (good: boolean) =>
    fc.record(Object.fromEntries(Object.entries(route.pathParams).map(([name, s]) => [name, idChoice(s, good)])))
  const chunks = fc.option(fc.array(fc.integer({ min: 1, max: 4096 }), { minLength: 1, maxLength: 8 }), { freq: 5 })
  const build = (focus: FuzzCase['focus'], idsGood: boolean, queryGood: boolean, bodyGood: boolean, methods = false) =>
    fc
      .record({
        method: methods
          ? fc.oneof({ arbitrary: fc.constant(route.method), weight: 3 }, fc.constantFrom(...OTHER_METHODS))
          : fc.constant(route.method),
        ids: ids(idsGood),
        query: queryArb(route, queryGood),
        body: sendsBody ? bodyArb(route, bodyGood) : fc.constant<BodyPlan>({ kind: 'none' }),
        contentType: bodyGood ? fc.constant('application/json') : contentTypeArb,
        chunks: sendsBody ? chunks : fc.constant(null),
        lastEventId: queryGood ? fc.constant(null) : fc.option(eventIdArb, { freq: 3 }),
      })
      .map((c): FuzzCase => ({ focus, ...c }))
  const hasPath = Object.keys(route.pathParams).length > 0
  return fc.oneof(
    { arbitrary: build('body', true, true, false), weight: sendsBody ? (route.body ? 6 : 2) : 0 },
    { arbitrary: build('query', true, false, true), weight: 2 },
    { arbitrary: build('path', false, true, true), weight: hasPath ? 2 : 0 },
    { arbitrary: build('mixed', false, false, false, true), weight: 1 },
  )
}

/** The body bytes and a label for what was done to them. */
function renderBody(plan: BodyPlan, resolve: Resolve): { bytes?: Uint8Array; label: string } {
  if (plan.kind === 'none') return { label: 'no body' }
  if (plan.kind === 'junk') return { bytes: plan.bytes, label: plan.label }
  const { value, label } = applyMutations(plan.value, plan.mutations)
  let text = serialize(value, resolve)
  const parts = [label || 'valid']
  if (plan.textOp) {
    text = applyTextOp(text, plan.textOp.op, plan.textOp.n)
    parts.push(plan.textOp.op)
  }
  if (plan.badUtf8 !== undefined) {
    parts.push(`bad UTF-8 #${plan.badUtf8 % 10}`)
    return { bytes: injectBadUtf8(text, plan.badUtf8), label: parts.join(' ') }
  }
  return { bytes: new TextEncoder().encode(text), label: parts.join(' ') }
}

/** Turns a case into a request against `origin`, resolving pool references with `resolve`. */
export function renderCase(route: Route, c: FuzzCase, origin: string, resolve: Resolve): Rendered {
  // Raw text goes into the URL as it is (junk ids); anything else is percent-encoded.
  const plain = (v: Val): string =>
    v instanceof Raw
      ? v.text
      : percentEncode(typeof v === 'string' ? v : v instanceof PoolRef ? resolve(v) : serialize(v, resolve))
  let path = route.path
  for (const [name, v] of Object.entries(c.ids)) path = path.replace(`{${name}}`, plain(v))
  const query = c.query.map((s) => ('raw' in s ? s.raw : `${s.name}=${plain(s.value)}`)).join('&')
  const body = c.method === 'GET' || c.method === 'HEAD' ? { label: 'no body' } : renderBody(c.body, resolve)
  const headers: Record<string, string> = {}
  if (body.bytes && c.contentType !== null) headers['content-type'] = c.contentType
  if (c.lastEventId !== null) headers['last-event-id'] = c.lastEventId
  const bodyText = body.bytes ? new TextDecoder().decode(body.bytes) : ''
  return {
    method: c.method,
    url: origin + path + (query ? `?${query}` : ''),
    headers,
    body: body.bytes,
    chunks: body.bytes ? c.chunks : null,
    label: `${c.focus}: ${body.label}${c.chunks && body.bytes ? ' (chunked)' : ''}${c.lastEventId !== null ? ' +Last-Event-ID' : ''}`,
    bodyText,
  }
}
