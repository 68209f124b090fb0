// The controller's container files cannot be built here (no container engine): these checks read
// them for what matters and hold them to the code they package (config.ts, build-server.js).
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import path from 'node:path'
import { test } from 'node:test'
import { ControllerConfig, loadConfig } from '../../controller/src/config.ts'
import { REPO_ROOT } from '../harness/controller-process.ts'

const read = (file: string) => readFileSync(path.join(REPO_ROOT, 'packaging/controller', file), 'utf8')
const defaults = loadConfig({})

/** Dockerfile instructions per stage (continuation lines joined, comments dropped). */
function stages(text: string): { from: string; lines: string[] }[] {
  const joined = text.replace(/\\\n/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
  const out: { from: string; lines: string[] }[] = []
  for (const line of joined) {
    if (/^FROM /i.test(line)) out.push({ from: line, lines: [] })
    else out.at(-1)?.lines.push(line)
  }
  return out
}

test('the Dockerfile builds in one stage and runs as a non-root user from node:20-bookworm-slim with only what the controller needs', () => {
  const all = stages(read('Dockerfile'))
  assert.ok(all.length >= 2, 'multi-stage')
  const build = all.find((s) => s.lines.some((l) => /npm run build\b/.test(l)))
  assert.ok(build && /\bAS \w+/i.test(build.from), 'a named build stage runs npm run build')
  assert.ok(build.lines.some((l) => /npm ci\b/.test(l)))
  const runtime = all.at(-1)!
  assert.match(runtime.from, /^FROM node:20-bookworm-slim$/)
  const user = runtime.lines.find((l) => /^USER /.test(l))
  assert.ok(user, 'the runtime stage sets USER')
  assert.doesNotMatch(user, /^USER (root|0)(:|$)/)
  assert.ok(!runtime.lines.some((l) => /npm (ci|install|run)\b/.test(l) || /apt-get install/.test(l)), 'nothing is built or installed in the runtime stage')
  const copies = runtime.lines.filter((l) => l.startsWith('COPY '))
  for (const what of ['node_modules', 'dist/controller', 'ui/dist']) assert.ok(copies.some((l) => l.includes(what)), `copies ${what}`)
  assert.ok(copies.every((l) => l.includes('--from=')), 'only built artefacts, never the source tree')
  // Production dependencies only: the stage node_modules comes from installs with --omit=dev.
  const depsStage = all.find((s) => copies.some((c) => c.includes('node_modules') && c.includes(`--from=${/AS (\w+)/i.exec(s.from)?.[1]}`)))
  assert.ok(depsStage?.lines.some((l) => /npm ci .*--omit=dev/.test(l)), 'node_modules is installed with --omit=dev')
  // The bundle build-server.js writes, with the migrations it copies beside it.
  const buildServer = readFileSync(path.join(REPO_ROOT, 'packaging/build-server.js'), 'utf8')
  assert.match(buildServer, /dist\/controller\/opsconductor\.mjs/)
  assert.match(buildServer, /dist\/controller\/migrations/)
  assert.ok(runtime.lines.some((l) => l === 'ENTRYPOINT ["node", "dist/controller/opsconductor.mjs"]'))
  assert.ok(runtime.lines.some((l) => l === 'CMD ["controller"]'))
})

test('the image probes /readyz over HTTPS, exposes the configured ports and keeps its data in a volume', () => {
  const runtime = stages(read('Dockerfile')).at(-1)!
  const health = runtime.lines.find((l) => l.startsWith('HEALTHCHECK '))
  assert.ok(health)
  assert.match(health, /require\('https'\)/)
  assert.match(health, /path:'\/readyz'/)
  assert.match(health, /statusCode===200/)
  const expose = runtime.lines.find((l) => l.startsWith('EXPOSE '))!.split(/\s+/).slice(1).map(Number)
  assert.deepEqual(expose.sort(), [defaults.OPSC_HTTP_PORT, defaults.OPSC_GRPC_PORT].sort(), 'config.ts default ports')
  assert.match(health, new RegExp(`OPSC_HTTP_PORT\\|\\|${defaults.OPSC_HTTP_PORT}`))
  const env = runtime.lines.filter((l) => l.startsWith('ENV ')).join(' ')
  const dataDir = /OPSC_DATA_DIR=(\S+)/.exec(env)?.[1]
  assert.equal(dataDir, '/var/lib/opsconductor')
  assert.ok(runtime.lines.includes(`VOLUME ${dataDir}`))
  assert.match(env, /OPSC_UI_DIR=\/opt\/opsconductor\/ui\/dist/)
})

/** The lines of one service in compose.yaml (top-level `services:` entries are indented 2 spaces). */
function service(compose: string, name: string): string {
  const lines = compose.split('\n')
  const start = lines.indexOf(`  ${name}:`)
  assert.ok(start >= 0, `service ${name}`)
  const end = lines.findIndex((l, i) => i > start && /^ {0,2}\S/.test(l))
  return lines.slice(start, end < 0 ? undefined : end).join('\n')
}

test('compose runs Postgres 16 with a volume and starts the controller on it once Postgres is healthy', () => {
  const compose = read('compose.yaml')
  const pg = service(compose, 'postgres')
  assert.match(pg, /image: postgres:16\b/)
  assert.match(pg, /- postgres-data:\/var\/lib\/postgresql\/data/)
  assert.match(pg, /healthcheck:[\s\S]*pg_isready/)
  const ctl = service(compose, 'controller')
  assert.match(ctl, /dockerfile: packaging\/controller\/Dockerfile/)
  assert.match(ctl, /depends_on:\s+postgres:\s+condition: service_healthy/)
  const url = /DATABASE_URL: (\S+)/.exec(ctl)?.[1]
  assert.ok(url)
  assert.equal(new URL(url).hostname, 'postgres')
  assert.equal(new URL(url).pathname, `/${/POSTGRES_DB: (\S+)/.exec(pg)?.[1]}`)
  assert.doesNotThrow(() => loadConfig({ DATABASE_URL: url }), 'config.ts accepts it')
  assert.match(ctl, /- controller-data:\/var\/lib\/opsconductor/)
  for (const port of [defaults.OPSC_HTTP_PORT, defaults.OPSC_GRPC_PORT]) assert.match(ctl, new RegExp(`"${port}:${port}"`))
  assert.match(compose, /^volumes:\n {2}postgres-data:\n {2}controller-data:/m)
})

test('controller.env.example names every setting config.ts reads, and nothing else', () => {
  const names = [...read('controller.env.example').matchAll(/^#?([A-Z][A-Z0-9_]*)=/gm)].map((m) => m[1]!)
  const settings = Object.keys(ControllerConfig.shape)
  // Read by config.ts besides the schema: the JSON config file and *_FILE secrets.
  const config = readFileSync(path.join(REPO_ROOT, 'controller/src/config.ts'), 'utf8')
  const fileSecrets = JSON.parse(/for \(const key of (\[[^\]]+\]) as const\)/.exec(config)![1]!.replaceAll("'", '"')) as string[]
  const known = new Set([...settings, 'OPSC_CONFIG_FILE', ...fileSecrets.map((k) => `${k}_FILE`)])
  for (const n of names) assert.ok(known.has(n), `${n} is a setting config.ts reads`)
  for (const s of settings) assert.ok(names.includes(s), `${s} is in the example`)
  assert.equal(new Set(names).size, names.length, 'each named once')
  // Every value shown parses: the example never documents a value the controller would refuse.
  const values = Object.fromEntries([...read('controller.env.example').matchAll(/^#?([A-Z][A-Z0-9_]*)=(.+)$/gm)].map((m) => [m[1]!, m[2]!]))
  delete values.OPSC_TLS_CERT
  delete values.OPSC_TLS_KEY
  assert.doesNotThrow(() => loadConfig(values))
})
