/** loadConfig: SPEC defaults, refusals that name the variable, and how the database is chosen. */
import { describe, expect, test } from 'bun:test'
import { ConfigError, describeConfig, loadConfig } from '../src/config'

/** Runs loadConfig and answers the ConfigError it throws (fails the test if it does not throw one). */
function refusal(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env)
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError)
    return error as ConfigError
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`)
}

describe('defaults', () => {
  test('an empty environment gives the SPEC defaults', () => {
    const config = loadConfig({})
    expect(config).toMatchObject({
      env: 'PROD',
      port: 7011,
      tablePrefix: 'foreman_',
      reaperIntervalSec: 10,
      defaultLeaseSec: 60,
      schedulerIntervalSec: 1,
      retentionDays: 0,
      maxStreams: 1000,
    })
    expect(config.database.kind).toBe('embedded')
  })

  test('set values are read', () => {
    const config = loadConfig({
      ENV: 'DEV',
      PORT: '8080',
      FOREMAN_REAPER_INTERVAL_SEC: '2.5',
      FOREMAN_DEFAULT_LEASE_SEC: '300',
      FOREMAN_SCHEDULER_INTERVAL_SEC: '5',
      FOREMAN_RETENTION_DAYS: '30',
      FOREMAN_TABLE_PREFIX: 'acme_',
      FOREMAN_MAX_STREAMS: '50',
    })
    expect(config).toMatchObject({
      env: 'DEV',
      port: 8080,
      reaperIntervalSec: 2.5,
      defaultLeaseSec: 300,
      schedulerIntervalSec: 5,
      retentionDays: 30,
      tablePrefix: 'acme_',
      maxStreams: 50,
    })
  })
})

describe('bad values stop start-up naming the variable', () => {
  const badNumbers: [string, string][] = [
    ['FOREMAN_REAPER_INTERVAL_SEC', 'ten'],
    ['FOREMAN_REAPER_INTERVAL_SEC', '-1'],
    ['FOREMAN_DEFAULT_LEASE_SEC', '1.5'],
    ['FOREMAN_DEFAULT_LEASE_SEC', '0'],
    ['FOREMAN_SCHEDULER_INTERVAL_SEC', 'NaN'],
    ['FOREMAN_RETENTION_DAYS', '-3'],
    ['FOREMAN_RETENTION_DAYS', 'forever'],
    ['FOREMAN_MAX_STREAMS', '0'],
    ['FOREMAN_MAX_STREAMS', '2.5'],
    ['FOREMAN_MAX_STREAMS', 'unlimited'],
    ['PORT', '70000'],
    ['PORT', '80x'],
  ]
  for (const [name, value] of badNumbers) {
    test(`${name}=${JSON.stringify(value)} is refused`, () => {
      expect(refusal({ [name]: value }).message).toContain(name)
    })
  }

  const badPrefixes = ['Foreman_', '1abc_', 'a-b_', 'x; drop table jobs; --', 'pré_', `a${'b'.repeat(41)}`, ' ']
  for (const prefix of badPrefixes) {
    test(`FOREMAN_TABLE_PREFIX=${JSON.stringify(prefix)} is refused`, () => {
      expect(refusal({ FOREMAN_TABLE_PREFIX: prefix }).message).toContain('FOREMAN_TABLE_PREFIX')
    })
  }

  test('a bad DATABASE_PORT names DATABASE_PORT', () => {
    expect(refusal({ DATABASE_PORT: 'fivefour' }).message).toContain('DATABASE_PORT')
  })

  test('an unknown ENV names ENV', () => {
    expect(refusal({ ENV: 'STAGING' }).message).toContain('ENV')
  })
})

describe('table prefix', () => {
  test('an explicitly empty FOREMAN_TABLE_PREFIX means no prefix', () => {
    expect(loadConfig({ FOREMAN_TABLE_PREFIX: '' }).tablePrefix).toBe('')
  })

  test('the longest allowed prefix (41 chars) is accepted', () => {
    const prefix = `a${'_'.repeat(40)}`
    expect(loadConfig({ FOREMAN_TABLE_PREFIX: prefix }).tablePrefix).toBe(prefix)
  })
})

describe('database selection', () => {
  test('no DATABASE_* at all selects the embedded Postgres', () => {
    expect(loadConfig({ PORT: '1234' }).database.kind).toBe('embedded')
  })

  test('any one DATABASE_* selects an external server with the defaults filled in', () => {
    const db = loadConfig({ DATABASE_HOST: 'db.internal' }).database
    expect(db.kind).toBe('external')
    const url = new URL((db as { url: string }).url)
    expect(url.hostname).toBe('db.internal')
    expect(url.port).toBe('5432')
    expect(url.pathname).toBe('/foreman')
    expect(decodeURIComponent(url.username)).toBe('postgres')
    expect(decodeURIComponent(url.password)).toBe('password')
  })

  test('DATABASE_PASSWORD alone is enough, and odd characters survive the URL', () => {
    const db = loadConfig({ DATABASE_PASSWORD: 'p@ss:w/rd', DATABASE_NAME: 'jobs' }).database
    expect(db.kind).toBe('external')
    const url = new URL((db as { url: string }).url)
    expect(url.hostname).toBe('localhost')
    expect(url.pathname).toBe('/jobs')
    expect(decodeURIComponent(url.password)).toBe('p@ss:w/rd')
  })

  test('DATABASE_URL wins over the DATABASE_* parts', () => {
    const target = 'postgres://alice:secret@pg.example:6543/prod'
    const db = loadConfig({ DATABASE_URL: target, DATABASE_HOST: 'other', DATABASE_PORT: '1111' }).database
    expect(db).toMatchObject({ kind: 'external', url: target })
  })
})

describe('behind PgBouncer (FOREMAN_DB_POOL_MODE)', () => {
  const pooler = 'postgres://u:pw@pgbouncer:6432/x'
  const direct = 'postgres://u:pw@db:5432/x'

  test('session mode is the default and needs no direct URL', () => {
    expect(loadConfig({ DATABASE_URL: pooler }).database).toMatchObject({ poolMode: 'session', directUrl: null })
  })

  test('transaction mode takes the direct URL for what needs a session', () => {
    const db = loadConfig({
      DATABASE_URL: pooler,
      FOREMAN_DB_POOL_MODE: 'transaction',
      FOREMAN_DIRECT_DATABASE_URL: direct,
    }).database
    expect(db).toMatchObject({ kind: 'external', url: pooler, poolMode: 'transaction', directUrl: direct })
  })

  test('transaction mode without a direct URL is refused at start, saying why', () => {
    expect(() => loadConfig({ DATABASE_URL: pooler, FOREMAN_DB_POOL_MODE: 'transaction' })).toThrow(
      /FOREMAN_DIRECT_DATABASE_URL.*LISTEN, NOTIFY and migrations need a session/,
    )
  })

  test('transaction mode with the embedded Postgres, or an unknown mode, or a bad direct URL is refused', () => {
    expect(() => loadConfig({ FOREMAN_DB_POOL_MODE: 'transaction' })).toThrow(/DATABASE_URL pointing at the pooler/)
    expect(() => loadConfig({ DATABASE_URL: pooler, FOREMAN_DB_POOL_MODE: 'statement' })).toThrow(
      /FOREMAN_DB_POOL_MODE must be session or transaction/,
    )
    expect(() =>
      loadConfig({ DATABASE_URL: pooler, FOREMAN_DB_POOL_MODE: 'transaction', FOREMAN_DIRECT_DATABASE_URL: 'db:5432' }),
    ).toThrow(/FOREMAN_DIRECT_DATABASE_URL must start with postgres/)
  })

  test('the start-up description masks both passwords', () => {
    const described = JSON.stringify(
      describeConfig(
        loadConfig({ DATABASE_URL: pooler, FOREMAN_DB_POOL_MODE: 'transaction', FOREMAN_DIRECT_DATABASE_URL: direct }),
      ),
    )
    expect(described).not.toContain('pw@')
    expect(described).toContain('transaction')
  })
})

describe('FOREMAN_HISTORY_AFTER_SEC', () => {
  test('defaults to 10 s, takes fractions and 0, and refuses a negative value naming it', () => {
    expect(loadConfig({}).historyAfterSec).toBe(10)
    expect(loadConfig({ FOREMAN_HISTORY_AFTER_SEC: '0.5' }).historyAfterSec).toBe(0.5)
    expect(loadConfig({ FOREMAN_HISTORY_AFTER_SEC: '0' }).historyAfterSec).toBe(0)
    expect(() => loadConfig({ FOREMAN_HISTORY_AFTER_SEC: '-1' })).toThrow(/FOREMAN_HISTORY_AFTER_SEC/)
  })
})

describe('a replica for reads (FOREMAN_READ_DATABASE_URL)', () => {
  const replica = 'postgres://u:replica-pw@replica:5432/foreman'

  test('is optional, and taken as given', () => {
    expect(loadConfig({}).readDatabaseUrl).toBeNull()
    expect(loadConfig({ FOREMAN_READ_DATABASE_URL: replica }).readDatabaseUrl).toBe(replica)
  })

  test('must be a postgres URL, and its password is masked in the start-up description', () => {
    expect(() => loadConfig({ FOREMAN_READ_DATABASE_URL: 'replica:5432' })).toThrow(
      /FOREMAN_READ_DATABASE_URL must start with postgres/,
    )
    const described = JSON.stringify(describeConfig(loadConfig({ FOREMAN_READ_DATABASE_URL: replica })))
    expect(described).toContain('replica:5432')
    expect(described).not.toContain('replica-pw')
  })
})

describe('the start-up description', () => {
  test('shows the stream cap and masks secrets', () => {
    const described = describeConfig(
      loadConfig({
        FOREMAN_MAX_STREAMS: '25',
        FOREMAN_API_TOKENS: 'secret-token',
        DATABASE_URL: 'postgres://u:pw@db/x',
      }),
    )
    expect(described).toMatchObject({ maxStreams: 25, apiTokens: ['***'] })
    expect(JSON.stringify(described)).not.toContain('secret-token')
    expect(JSON.stringify(described)).not.toContain('pw@')
  })
})
