/**
 * After Postgres restarts, Foreman's pools and its LISTEN connection come back
 * within moments of Postgres accepting connections, however many connects failed
 * during the outage. postgres.js' default backoff grows with every failed connect
 * across the pool (up to 20 s), so service resumed 10–20 s late (faults F1).
 */
import { afterAll, expect, test } from 'bun:test'
import postgres from 'postgres'
import { CONNECT_TIMEOUT_SEC, createNotifySql, createSql } from '../src/db/client'
import { toErrorResponse } from '../src/errors'
import { RestartablePostgres } from './support/restartable-postgres'

const pg = new RestartablePostgres()
afterAll(() => pg.close())

/** Postgres down this long, with queries failing all the while. */
const DOWN_MS = 4000
/** "Promptly": generous for a shared 2-core machine; unpatched, the first query waited 5–20 s. */
const BACK_WITHIN_MS = 3000

/** Runs `query` until it succeeds; answers when (ms since epoch), or null after `limitMs`. */
async function firstSuccess(query: () => Promise<unknown>, limitMs: number): Promise<number | null> {
  const until = Date.now() + limitMs
  while (Date.now() < until) {
    const ok = await Promise.race([
      query().then(
        () => true,
        () => false,
      ),
      Bun.sleep(until - Date.now()).then(() => false),
    ])
    if (ok) return Date.now()
    await Bun.sleep(20)
  }
  return null
}

test('a pool, the notify connection and a LISTEN answer again within moments of Postgres restarting', async () => {
  await pg.start()
  const sql = createSql({ url: pg.url, max: 4 })
  const notifySql = createNotifySql(pg.url)
  const heard: string[] = []
  try {
    await sql`select 1`
    await notifySql`select 1`
    await sql.listen('restart_test', (payload) => heard.push(payload))

    await pg.stopImmediate()
    // Every query during the outage fails (and postgres.js counts each failed connect).
    const settled: Promise<unknown>[] = []
    const outageEnds = Date.now() + DOWN_MS
    while (Date.now() < outageEnds) {
      settled.push(
        sql`select 1`.catch(() => {}),
        notifySql`select 1`.catch(() => {}),
      )
      await Bun.sleep(50)
    }
    await pg.run()
    const back = Date.now()

    const [pool, notify] = await Promise.all([
      firstSuccess(() => sql`select 1`, 25_000),
      firstSuccess(() => notifySql`select 1`, 25_000),
    ])
    // A NOTIFY from a fresh client reaches the re-established LISTEN.
    const other = postgres(pg.url, { max: 1, onnotice: () => {} })
    let listen: number | null = null
    try {
      listen = await firstSuccess(async () => {
        await other`select pg_notify('restart_test', 'again')`
        await Bun.sleep(50)
        if (!heard.includes('again')) throw new Error('not heard yet')
      }, 25_000)
    } finally {
      await other.end({ timeout: 1 })
    }
    const after = (at: number | null) => (at === null ? null : at - back)
    const waited = { pool: after(pool), notify: after(notify), listen: after(listen) }
    expect(waited.pool).not.toBeNull()
    expect(waited.notify).not.toBeNull()
    expect(waited.listen).not.toBeNull()
    expect({
      pool: (waited.pool ?? Infinity) <= BACK_WITHIN_MS,
      notify: (waited.notify ?? Infinity) <= BACK_WITHIN_MS,
      listen: (waited.listen ?? Infinity) <= BACK_WITHIN_MS,
      waited,
    }).toEqual({ pool: true, notify: true, listen: true, waited })
    // Nothing asked during the outage hung: every query settled.
    await Promise.all(settled)
  } finally {
    await Promise.all([sql.end({ timeout: 1 }), notifySql.end({ timeout: 1 })])
  }
}, 60_000)

test('a connect that gets no answer (a black-holed host) fails within seconds as CONNECT_TIMEOUT, a 503', async () => {
  // Accepts TCP and never says a word, as a host behind a dead route or a hung server would.
  const silent = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const sql = createSql({ url: `postgres://u:p@127.0.0.1:${silent.port}/db`, max: 1 })
  try {
    const began = Date.now()
    const error = await Promise.race([
      sql`select 1`.then(
        () => 'answered',
        (e) => e,
      ),
      Bun.sleep(25_000).then(() => 'still waiting after 25 s'),
    ])
    expect((error as { code?: string }).code).toBe('CONNECT_TIMEOUT')
    expect(Date.now() - began).toBeGreaterThanOrEqual(CONNECT_TIMEOUT_SEC * 1000 - 100)
    expect(toErrorResponse(error).status).toBe(503)
  } finally {
    await sql.end({ timeout: 1 })
    silent.stop(true)
  }
}, 40_000)
