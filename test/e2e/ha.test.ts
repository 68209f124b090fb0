import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs'
import { request } from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { Readable } from 'node:stream'
import { after, before, test } from 'node:test'
import { sql } from 'drizzle-orm'
import { createEnrollmentToken } from '../../controller/src/agents/enrollment.ts'
import { rowsOf } from '../../controller/src/db/migrate.ts'
import { AgentProcess, agentCli, waitUntil } from '../harness/agents.ts'
import { createTestUser } from '../harness/auth.ts'
import { createTestContext, type TestContext } from '../harness/context.ts'
import { startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { testBackend } from '../harness/db.ts'
import { httpsRequest } from '../harness/https.ts'
import { agentTargetId, SseReader } from '../harness/runs.ts'

/*
 * The high-availability topology of docs/ha.md, for real: three controller processes on one
 * Postgres sharing the master key and the CA, agents enrolled with every controller's address.
 * Any controller serves the API and live output of any run; a controller killed with -9 mid-run
 * loses its agents to the others, and its in-flight steps finish once, with all their output.
 */

// Three processes sharing one database that outlives a killed one: Postgres only.
const skip = (await testBackend()) !== 'postgres' ? 'needs Postgres' : false

const AGENTS = 6
const masterKey = randomBytes(32)
let t: TestContext
const controllers: ControllerProcess[] = []
const agents: { process: AgentProcess; stateDir: string; agentId: string; targetId: string; name: string }[] = []
const work = mkdtempSync(path.join(tmpdir(), 'opsc-ha-'))
let token: string

/** The REST API of one controller process, over its HTTPS listener. */
class HttpApi {
  constructor(readonly controller: ControllerProcess) {}

  async call(method: string, url: string, body?: unknown): Promise<{ status: number; body: any }> {
    const res = await httpsRequest(`${this.controller.baseUrl}${url}`, {
      ca: this.controller.ca,
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    })
    let parsed: unknown = res.body
    try {
      parsed = JSON.parse(res.body)
    } catch {
      /* text */
    }
    return { status: res.status, body: parsed }
  }

  async createJob(definition: unknown): Promise<string> {
    const res = await this.call('POST', '/api/v1/jobs', definition)
    assert.equal(res.status, 201, JSON.stringify(res.body))
    return res.body.id
  }

  async run(jobId: string): Promise<string> {
    const res = await this.call('POST', `/api/v1/jobs/${jobId}/run`, {})
    assert.equal(res.status, 202, JSON.stringify(res.body))
    return res.body.run_id
  }

  async waitForRun(runId: string, timeoutMs: number): Promise<any> {
    let last: any
    await waitUntil(async () => !['queued', 'running'].includes((last = (await this.call('GET', `/api/v1/runs/${runId}`)).body).status), timeoutMs, `run ${runId} to finish`)
    return last
  }

  async steps(runId: string): Promise<any[]> {
    const res = await this.call('GET', `/api/v1/runs/${runId}/steps?limit=500`)
    assert.equal(res.status, 200, JSON.stringify(res.body))
    return res.body.items
  }

  async output(runId: string, stepRunId: string): Promise<string> {
    const res = await this.call('GET', `/api/v1/runs/${runId}/steps/${stepRunId}/output`)
    assert.equal(res.status, 200)
    return typeof res.body === 'string' ? res.body : JSON.stringify(res.body)
  }

  /** The run's live Server-Sent Events from this controller. */
  events(runId: string): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const req = request(`${this.controller.baseUrl}/api/v1/runs/${runId}/events`, { ca: this.controller.ca, headers: { authorization: `Bearer ${token}` } }, (res) => {
        if (res.statusCode !== 200) return reject(new Error(`events: HTTP ${res.statusCode}`))
        resolve(new SseReader(Readable.toWeb(res) as ReadableStream<Uint8Array>))
      })
      req.on('error', reject)
      req.end()
    })
  }
}

const addressOf = (c: ControllerProcess) => `127.0.0.1:${c.grpcPort}`

/** The controller an agent's latest session is with, from the agent's own log. */
function controllerOf(a: AgentProcess): ControllerProcess | undefined {
  const ready = a.logs.filter((l) => l.msg === 'agent.session_ready').at(-1)
  return controllers.find((c) => addressOf(c) === ready?.controller)
}

/** The controller an agent's session is recorded with in the sessions table (what dispatch goes by). */
async function sessionHolders(): Promise<Map<string, number>> {
  const rows = rowsOf<{ agent_id: string; pid: number }>(
    await t.ctx.db.execute(sql`select s.agent_id, n.pid from agent_session s join controller_node n on n.id = s.controller_id`),
  )
  return new Map(rows.map((r) => [r.agent_id, r.pid]))
}

before(async () => {
  if (skip) return
  t = await createTestContext({ masterKey })
  const env = {
    DATABASE_URL: t.testDb.url!,
    // Shared by every controller: secrets and the assignment-signing key are sealed with it.
    OPSC_MASTER_KEY: masterKey.toString('base64'),
    OPSC_WORK_LEASE_MS: '2000',
    OPSC_AGENT_LOST_GRACE_MS: '60000',
  }
  // The first controller creates the CA; the others get a copy of it (docs/ha.md) and issue their own
  // server certificates from it. One at a time: cold starts on two cores only slow each other.
  controllers.push(await startControllerProcess({ dataDir: tempDataDir(), env }))
  for (let i = 1; i < 3; i++) {
    const dataDir = tempDataDir()
    mkdirSync(path.join(dataDir, 'tls'), { mode: 0o700 })
    for (const f of ['ca.crt', 'ca.key']) copyFileSync(path.join(controllers[0]!.dataDir, 'tls', f), path.join(dataDir, 'tls', f))
    controllers.push(await startControllerProcess({ dataDir, env }))
  }
  const fingerprints = controllers.map((c) => String(c.logs.find((l) => l.msg === 'controller.started')!.caFingerprint))
  assert.equal(new Set(fingerprints).size, 1, `every controller presents the same CA: ${fingerprints.join(' ')}`)
  token = (await createTestUser(t.ctx, 'operator')).token

  const all = controllers.map(addressOf)
  await Promise.all(
    Array.from({ length: AGENTS }, async (_, i) => {
      const { token: enrollment } = await createEnrollmentToken(t.ctx, undefined, { expires_in_seconds: 600, max_uses: 1 })
      const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-')), 'state')
      // Both spellings an installer may use: the flag repeated, or one comma list.
      const list = i % 2 ? all.flatMap((a) => ['--controller', a]) : ['--controller', all.join(',')]
      const res = await agentCli(['enroll', ...list, '--token', enrollment, '--ca-fingerprint', fingerprints[0]!, '--state-dir', stateDir])
      assert.equal(res.code, 0, res.stderr)
      const agentId = /enrolled as agent ([0-9a-f-]{36})/.exec(res.stdout)![1]!
      assert.deepEqual(JSON.parse(readFileSync(path.join(stateDir, 'agent.json'), 'utf8')).controllers, all, 'every controller address stored')
      const process = AgentProcess.start(stateDir)
      await process.waitFor('agent.session_ready')
      const targetId = await agentTargetId(t.ctx, agentId)
      const [target] = rowsOf<{ name: string }>(await t.ctx.db.execute(sql`select name from target where id = ${targetId}`))
      agents[i] = { process, stateDir, agentId, targetId, name: target!.name }
    }),
  )
})

after(async () => {
  await Promise.all(agents.map((a) => a?.process.kill('SIGTERM')))
  for (const c of controllers) await c.stop('SIGKILL')
  await t?.close()
})

test('agents enrolled with every controller spread over them; the sessions table says who holds whom', { skip }, async () => {
  const spreadOf = () => {
    const spread = new Map<ControllerProcess, number>()
    for (const a of agents) spread.set(controllerOf(a.process)!, (spread.get(controllerOf(a.process)!) ?? 0) + 1)
    return spread
  }
  // A random first controller each: all six on one of three is a fair draw with probability
  // 3 · (1/3)^6 ≈ 0.4 %, not a fault. Such a start draws again: one agent restarts (2/3 to land on
  // another controller), up to 8 times, so the check fails by chance about once in 10^7 runs.
  for (let redraw = 0; spreadOf().size < 2 && redraw < 8; redraw++) {
    console.log(`# all agents on one controller: agent 0 restarts for a new draw`)
    await agents[0]!.process.kill('SIGTERM')
    agents[0]!.process = AgentProcess.start(agents[0]!.stateDir)
    await agents[0]!.process.waitFor('agent.session_ready')
  }
  const spread = spreadOf()
  console.log(`# agents per controller: ${controllers.map((c) => spread.get(c) ?? 0).join(' / ')}`)
  // On failure: what each agent tried before its session (a failed attempt moves on to the next address).
  const tries = () =>
    agents.map((a) => a.process.logs.filter((l) => /^agent\.(session_ready|session_failed|disconnected)$/.test(String(l.msg))).map((l) => `${l.msg} ${l.controller} ${l.status ?? ''} ${l.details ?? l.err ?? ''}`).join('; ')).join('\n')
  assert.ok(spread.size >= 2, `agents spread over at least two controllers (${[...spread.values()].join(', ')}):\n${tries()}`)
  await waitUntil(async () => {
    const holders = await sessionHolders()
    return agents.every((a) => holders.get(a.agentId) === controllerOf(a.process)!.proc.pid)
  }, 10_000, 'each session recorded with the controller the agent dialled')
})

test('a fourth controller with its own CA (not a copy of the shared one) refuses to start, saying why', { skip }, async () => {
  const env = { DATABASE_URL: t.testDb.url!, OPSC_MASTER_KEY: masterKey.toString('base64') }
  await assert.rejects(startControllerProcess({ dataDir: tempDataDir(), env }), (err: Error) => {
    assert.match(err.message, /controller exited with 2 before starting/)
    assert.match(err.message, new RegExp(`TLS: this controller presents the CA sha256:[0-9a-f]{64}, but the 3 other controller\\(s\\) running on this database present sha256:[0-9a-f]{64}, the CA the ${AGENTS} enrolled agent\\(s\\) pinned`))
    assert.match(err.message, /copy tls\/ca\.crt and tls\/ca\.key from another controller's data dir/)
    return true
  })
})

test('a run started through one controller runs on agents of all three; another controller streams its live output and results', { skip, timeout: 60_000 }, async () => {
  const [x, y, z] = controllers.map((c) => new HttpApi(c))
  const jobId = await x!.createJob({
    name: 'ha fan-out',
    targets: agents.map((a) => `id:${a.targetId}`).join(' | '),
    steps: [{ id: 'hello', type: 'exec', shell: 'bash', command: 'for i in 1 2 3 4 5; do echo "{{ target.name }} line $i"; sleep 0.1; done' }],
  })
  const runId = await x!.run(jobId)
  const live = await y!.events(runId)
  await live.done // the stream ends after the run's final status and everything before it
  const run = await z!.waitForRun(runId, 30_000)
  assert.equal(run.status, 'succeeded', JSON.stringify(run))
  const steps = await y!.steps(runId)
  assert.equal(steps.length, AGENTS)
  const end = live.events.at(-1)!
  assert.equal(end.event, 'end')
  assert.equal(end.data.status, 'succeeded')
  for (const s of steps) {
    assert.equal(s.status, 'succeeded', JSON.stringify(s))
    const expected = [1, 2, 3, 4, 5].map((i) => `${s.target_name} line ${i}\n`).join('')
    assert.equal(await z!.output(runId, s.id), expected, `stored output of ${s.target_name}`)
    assert.equal(live.output(s.id), expected, `live output of ${s.target_name} through another controller`)
  }
})

test('kill -9 of a controller mid-run: its agents reconnect to the others within 60 s; every step runs once, ends right, output whole', { skip, timeout: 120_000 }, async () => {
  // The victim: the controller holding the most agents (at least one by the spread above).
  const count = (c: ControllerProcess) => agents.filter((a) => controllerOf(a.process) === c).length
  const victim = [...controllers].sort((a, b) => count(b) - count(a))[0]!
  const [reader, other] = controllers.filter((c) => c !== victim).map((c) => new HttpApi(c))
  const orphans = agents.filter((a) => controllerOf(a.process) === victim)
  const marks = path.join(work, 'marks')
  mkdirSync(marks)
  const LINES = 40
  const jobId = await reader!.createJob({
    name: 'ha survives a controller',
    targets: agents.map((a) => `id:${a.targetId}`).join(' | '),
    steps: [
      // ~6 s of output per target; the mark shows how often the step started on each agent.
      { id: 'long', type: 'exec', shell: 'bash', command: `echo "long $$" >> ${marks}/{{ target.name }}; for i in $(seq 1 ${LINES}); do echo "{{ target.name }} $i"; sleep 0.15; done` },
      { id: 'after', type: 'exec', shell: 'bash', command: `echo "after $$" >> ${marks}/{{ target.name }}; echo "{{ target.name }} done"` },
    ],
  })
  const runId = await other!.run(jobId)
  const live = await reader!.events(runId)
  // Output of the victim's agents is flowing: their steps are mid-run when it dies.
  const orphanSteps = async () =>
    rowsOf<{ n: number }>(
      await t.ctx.db.execute(sql`select count(distinct o.assignment_id)::int as n from agent_output o join step_run s on s.id = o.assignment_id
        where s.run_id = ${runId} and s.step_id = 'long' and s.agent_id = any(${`{${orphans.map((a) => a.agentId).join(',')}}`}::uuid[])`),
    )[0]!.n
  await waitUntil(async () => (await orphanSteps()) === orphans.length, 30_000, 'output from every agent of the victim')

  const killedAt = Date.now()
  const readyBefore = new Map(orphans.map((a) => [a, a.process.logs.filter((l) => l.msg === 'agent.session_ready').length]))
  await victim.stop('SIGKILL')
  const reconnected = new Map<(typeof agents)[number], number>()
  await waitUntil(
    () => {
      for (const a of orphans) {
        if (reconnected.has(a)) continue
        const ready = a.process.logs.filter((l) => l.msg === 'agent.session_ready').slice(readyBefore.get(a))
        const elsewhere = ready.find((l) => l.controller !== addressOf(victim))
        if (elsewhere) reconnected.set(a, Number(elsewhere.time) - killedAt)
      }
      return reconnected.size === orphans.length
    },
    60_000,
    "the killed controller's agents reconnect to the others",
  )
  const times = [...reconnected.values()]
  console.log(`# reconnect after kill -9 of the controller holding ${orphans.length} of ${AGENTS} agents: ${times.map((ms) => `${ms} ms`).join(', ')} (max ${Math.max(...times)} ms)`)
  assert.ok(Math.max(...times) < 60_000)
  const holders = await sessionHolders()
  for (const a of orphans) assert.notEqual(holders.get(a.agentId), victim.proc.pid, 'the session is recorded with a live controller')

  const run = await reader!.waitForRun(runId, 60_000).catch(async (err: Error) => {
    // What was left open, and who took the dead controller's steps over, for the report.
    const open = rowsOf(await t.ctx.db.execute(sql`select s.step_id, s.target_name, s.status, s.claimed_by, a.status as assignment, n.pid as holder
      from step_run s left join agent_assignment a on a.id = s.id left join agent_session x on x.agent_id = s.agent_id left join controller_node n on n.id = x.controller_id
      where s.run_id = ${runId} and s.status not in ('succeeded')`))
    const nodes = rowsOf(await t.ctx.db.execute(sql`select id, pid from controller_node`))
    const takeovers = controllers.map((c) => `${c.proc.pid}: ${JSON.stringify(c.logs.filter((l) => /taken_over|interrupted|execute_failed/.test(String(l.msg))))}`)
    throw new Error(`${err.message}\nopen: ${JSON.stringify(open)}\nnodes: ${JSON.stringify(nodes)}\nvictim ${victim.proc.pid}\n${takeovers.join('\n')}`)
  })
  const steps = await reader!.steps(runId)
  assert.equal(run.status, 'succeeded', JSON.stringify({ run, steps: steps.map((s) => [s.step_id, s.target_name, s.status, s.error]) }))
  assert.equal(steps.length, 2 * AGENTS, 'one step run per (step, target): nothing retried')
  await live.done
  // Informational: who took the dead controller's steps over, and how many verdicts reached them from another controller.
  const said = (c: ControllerProcess, msg: string) => c.logs.filter((l) => l.msg === msg).reduce((n, l) => n + Number(l.count ?? 1), 0)
  const survivors = controllers.filter((c) => c !== victim)
  console.log(`# taken over: ${survivors.map((c) => said(c, 'runs.agent_steps_taken_over')).join(' / ')}; verdicts read from another controller: ${survivors.map((c) => said(c, 'agents.verdicts_from_elsewhere')).join(' / ')}`)
  for (const s of steps) {
    assert.equal(s.status, 'succeeded', JSON.stringify(s))
    assert.equal(s.attempt, 1)
    const expected = s.step_id === 'long' ? Array.from({ length: LINES }, (_, i) => `${s.target_name} ${i + 1}\n`).join('') : `${s.target_name} done\n`
    assert.equal(await other!.output(runId, s.id), expected, `stored output of ${s.step_id} on ${s.target_name}: nothing lost, nothing twice`)
    assert.equal(live.output(s.id), expected, `live output of ${s.step_id} on ${s.target_name}`)
  }
  for (const a of agents) {
    const lines = readFileSync(path.join(marks, a.name), 'utf8').trim().split('\n')
    assert.deepEqual(lines.map((l) => l.split(' ')[0]), ['long', 'after'], `each step ran exactly once on ${a.name}:\n${lines.join('\n')}`)
  }
  const assignments = rowsOf<{ n: number }>(await t.ctx.db.execute(sql`select count(*)::int as n from agent_assignment where run_id = ${runId}`))[0]!.n
  assert.equal(Number(assignments), 2 * AGENTS, 'no step was dispatched twice')
})
