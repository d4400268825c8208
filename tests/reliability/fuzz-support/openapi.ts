/**
 * The routes to fuzz, read from the server's own OpenAPI document, so a route
 * added later is fuzzed without touching the fuzzer.
 */

/** A JSON Schema as the OpenAPI document gives it (TypeBox output). */
export type Schema = {
  type?: string
  properties?: Record<string, Schema>
  required?: string[]
  items?: Schema
  anyOf?: Schema[]
  const?: unknown
  minLength?: number
  maxLength?: number
  minimum?: number
  maximum?: number
  minItems?: number
  maxItems?: number
  pattern?: string
  format?: string
  $ref?: string
}

/** A query parameter. */
export interface QueryParam {
  name: string
  schema: Schema
}

/** One method on one path. */
export interface Route {
  method: string
  /** As the document spells it: /foreman/jobs/{id}. */
  path: string
  /** `METHOD /path`, the key used in reports and for replay. */
  key: string
  /** Path parameter name → its schema (for ids: the pattern says which prefix). */
  pathParams: Record<string, Schema>
  query: QueryParam[]
  /** The JSON request body's schema, when the route takes one. */
  body?: Schema
}

interface Operation {
  parameters?: { name: string; in: string; schema?: Schema }[]
  requestBody?: { content?: Record<string, { schema?: Schema }> }
}

/** Resolves `#/components/schemas/X` references, recursively. */
function resolveRefs(schema: Schema, doc: { components?: { schemas?: Record<string, Schema> } }, depth = 0): Schema {
  if (depth > 20) return schema
  if (schema.$ref) {
    const name = schema.$ref.replace('#/components/schemas/', '')
    return resolveRefs(doc.components?.schemas?.[name] ?? {}, doc, depth + 1)
  }
  const out: Schema = { ...schema }
  if (schema.properties) {
    out.properties = Object.fromEntries(
      Object.entries(schema.properties).map(([k, v]) => [k, resolveRefs(v, doc, depth + 1)]),
    )
  }
  if (schema.items) out.items = resolveRefs(schema.items, doc, depth + 1)
  if (schema.anyOf) out.anyOf = schema.anyOf.map((s) => resolveRefs(s, doc, depth + 1))
  return out
}

/** Fetches the document from a running server and lists its routes. */
export async function loadRoutes(base: string): Promise<Route[]> {
  const res = await fetch(`${base}/docs/json`)
  if (!res.ok) throw new Error(`GET ${base}/docs/json answered ${res.status}`)
  const doc = (await res.json()) as {
    paths: Record<string, Record<string, Operation>>
    components?: { schemas?: Record<string, Schema> }
  }
  const routes: Route[] = []
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const params = op.parameters ?? []
      const pathParams = Object.fromEntries(
        params.filter((p) => p.in === 'path').map((p) => [p.name, resolveRefs(p.schema ?? {}, doc)]),
      )
      const query = params
        .filter((p) => p.in === 'query')
        .map((p) => ({ name: p.name, schema: resolveRefs(p.schema ?? {}, doc) }))
      const json = op.requestBody?.content?.['application/json']?.schema
      routes.push({
        method: method.toUpperCase(),
        path,
        key: `${method.toUpperCase()} ${path}`,
        pathParams,
        query,
        body: json ? resolveRefs(json, doc) : undefined,
      })
    }
  }
  return routes
}

/** The id prefix a path or body field expects (`job_`, `run_`, `sched_`), from its pattern. */
export function idPrefixOf(schema: Schema): string | undefined {
  return schema.pattern?.match(/^\^([a-z]+_)/)?.[1]
}
