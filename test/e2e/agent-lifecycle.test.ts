// The agent's lifecycle as an operator and a service supervisor see it: status, exit codes, unenroll, revocation.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { createApp } from '../../controller/src/app.ts'
import { Shell } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { VERSION } from '../../proto/src/product-version.ts'
import { call, createTestUser } from '../harness/auth.ts'
import { AGENT_BIN, AgentProcess, agentCli, CuttableProxy, enrollAgent, TestController, waitUntil } from '../harness/agents.ts'
import { REPO_ROOT } from '../harness/controller-process.ts'

let controller: TestController
let api: (method: string, url: string) => Promise<{ status: number; body: any }>
const agents: AgentProcess[] = []
const start = (stateDir: string) => {
  const agent = AgentProcess.start(stateDir)
  agents.push(agent)
  return agent
}

before(async () => {
  controller = await TestController.start({ OPSC_AGENT_HEARTBEAT_MS: '1000' })
  const app = createApp(controller.ctx, { uiDir: '/nonexistent' })
  const admin = await createTestUser(controller.ctx, 'admin')
  api = (method, url) => call(app, method, url, { token: admin.token, ...(method === 'POST' ? { body: {} } : {}) })
})
after(async () => {
  for (const agent of agents) await agent.kill('SIGKILL')
  await controller?.stop()
})

const status = async (stateDir: string) => {
  const res = await agentCli(['status', '--state-dir', stateDir, '--json'])
  return { code: res.code, report: JSON.parse(res.stdout) }
}

test('status and run before enrolment: exit 2 with a hint', async () => {
  const dir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-lifecycle-')), 'state')
  const human = await agentCli(['status', '--state-dir', dir])
  assert.equal(human.code, 2)
  assert.match(human.stdout, /^status +not enrolled: run `opsconductor-agent enroll` first\n/)
  const run = await agentCli(['run', '--state-dir', dir])
  assert.equal(run.code, 2)
  assert.equal(run.stderr, `opsconductor-agent: ${dir} holds no enrolled agent; run \`opsconductor-agent enroll\` first\n`)
  const badFlag = await agentCli(['run', '--state-dir', dir, '--max-concurrent', 'many'])
  assert.equal(badFlag.code, 2)
  const help = await agentCli(['--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /Exit codes[^\n]*\n {2}0 .*\n {2}1 .*\n {2}2 .*configuration error.*\n {2}3 .*refused this agent's identity/)
})

test('enrolled, then running and connected, refusing unenroll; SIGTERM exits 0; unenroll removes the identity; run then exits 2', async () => {
  const { agentId, stateDir } = await enrollAgent(controller)
  const idle = await status(stateDir)
  assert.equal(idle.code, 4)
  assert.deepEqual(
    [idle.report.status, idle.report.agent_id, idle.report.controllers, idle.report.ca_fingerprint, idle.report.running, idle.report.connected],
    ['not_running', agentId, [controller.grpcAddress], controller.running.caFingerprint, false, false],
  )
  assert.ok(Date.now() - Date.parse(idle.report.enrolled_at) < 120_000)

  const agent = start(stateDir)
  await agent.waitFor('agent.session_ready')
  let live = await status(stateDir)
  await waitUntil(async () => (live = await status(stateDir)).code === 0, 10_000, 'status connected')
  assert.deepEqual(
    [live.report.status, live.report.running, live.report.connected, live.report.pid, live.report.controller, live.report.version, live.report.running_version, live.report.protocol],
    ['connected', true, true, agent.proc.pid, controller.grpcAddress, VERSION, VERSION, '1.0'],
  )
  assert.equal(live.report.last_error, null)
  assert.equal(typeof live.report.spool.bytes, 'number')
  const text = await agentCli(['status', '--state-dir', stateDir])
  assert.equal(text.code, 0)
  for (const key of ['status', 'agent id', 'controller', 'ca fingerprint', 'enrolled at', 'process', 'version', 'spool', 'state dir']) {
    assert.match(text.stdout, new RegExp(`^${key} +\\S`, 'm'), key)
  }

  const refused = await agentCli(['unenroll', '--state-dir', stateDir, '--yes'])
  assert.equal(refused.code, 1)
  assert.equal(refused.stderr, `opsconductor-agent: the agent is running (pid ${agent.proc.pid}); stop the agent service first, then unenroll again\n`)
  assert.ok(existsSync(path.join(stateDir, 'agent.json')))

  assert.equal(await agent.kill('SIGTERM'), 0)
  const stopped = await status(stateDir)
  assert.deepEqual([stopped.code, stopped.report.status, stopped.report.pid], [4, 'not_running', agent.proc.pid])

  const noTty = await agentCli(['unenroll', '--state-dir', stateDir])
  assert.equal(noTty.code, 2)
  assert.match(noTty.stderr, /stdin is not a terminal; pass --yes/)
  const gone = await agentCli(['unenroll', '--state-dir', stateDir, '--yes'])
  assert.equal(gone.code, 0, gone.stderr)
  assert.match(gone.stdout, new RegExp(`^unenrolled agent ${agentId}: removed its identity, journal and spool from `))
  assert.match(gone.stdout, new RegExp(`POST /api/v1/agents/${agentId}/revoke`))
  assert.deepEqual(readdirSync(stateDir), [], 'the directory stays, empty')
  assert.equal((await status(stateDir)).code, 2)
  const after = await agentCli(['run', '--state-dir', stateDir])
  assert.equal(after.code, 2)
  assert.match(after.stderr, /holds no enrolled agent; run `opsconductor-agent enroll` first/)
})

// `script` gives the command a terminal.
test('on a terminal, unenroll asks first; "n" keeps everything', { skip: !existsSync('/usr/bin/script') && 'no /usr/bin/script' }, async () => {
  const { stateDir } = await enrollAgent(controller)
  const answer = await new Promise<{ code: number | null; out: string }>((resolve) => {
    const cmd = `${process.execPath} ${AGENT_BIN} unenroll --state-dir ${stateDir}`
    const proc = spawn('/usr/bin/script', ['-qec', cmd, '/dev/null'], { cwd: REPO_ROOT })
    let out = ''
    let answered = false
    proc.stdin.on('error', () => {}) // the command may be gone before the pipe flushes
    proc.stdout.on('data', (d) => {
      out += d
      if (!answered && out.includes('[y/N]')) {
        answered = true
        proc.stdin.write('n\n')
      }
    })
    proc.on('exit', (code) => resolve({ code, out }))
  })
  assert.match(answer.out, /Remove the identity, journal and spool of agent [0-9a-f-]{36} from .*\[y\/N\]/)
  assert.match(answer.out, /unenroll cancelled; nothing was removed/)
  assert.equal(answer.code, 1)
  assert.ok(existsSync(path.join(stateDir, 'agent.json')))
})

test('cut off from the controller: status says running, not connected (5); output waits in the spool, counted after SIGTERM', async () => {
  const proxy = await CuttableProxy.start(controller.grpcPort)
  const { agentId, stateDir } = await enrollAgent(controller, proxy.address)
  const agent = start(stateDir)
  await agent.waitFor('agent.session_ready')
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-spooled-'))
  const script = `touch ${dir}/started; while [ ! -e ${dir}/go ]; do sleep 0.05; done; head -c 100000 /dev/zero | tr '\\0' x; touch ${dir}/done`
  void controller.dispatcher.dispatch(agentId, { case: 'exec', value: { command: { case: 'script', value: { shell: Shell.BASH, script } } } }).then(({ done }) => done.catch(() => {}))
  await waitUntil(() => existsSync(path.join(dir, 'started')), 30_000, 'the script started')
  await proxy.close()
  let cut = await status(stateDir)
  await waitUntil(async () => (cut = await status(stateDir)).code === 5, 10_000, 'status disconnected')
  assert.deepEqual([cut.report.status, cut.report.running, cut.report.connected], ['disconnected', true, false])
  assert.ok(cut.report.last_error, 'the reason it is not connected')
  mkdirSync(path.join(dir, 'go'))
  await waitUntil(() => existsSync(path.join(dir, 'done')), 30_000, 'the script finished')
  await new Promise((r) => setTimeout(r, 500)) // the last output and the result reach the spool
  assert.equal(await agent.kill('SIGTERM'), 0)
  const after = await status(stateDir)
  assert.equal(after.code, 4)
  assert.ok(after.report.spool.entries >= 2, `output and result unacknowledged: ${JSON.stringify(after.report.spool)}`)
  assert.ok(after.report.spool.bytes > 100_000 && after.report.spool.segments >= 1, JSON.stringify(after.report.spool))
})

test('a revoked agent exits 3, at once and again on restart; status says refused (3)', async () => {
  const { agentId, stateDir } = await enrollAgent(controller)
  const agent = start(stateDir)
  await agent.waitFor('agent.session_ready')
  assert.equal((await api('POST', `/api/v1/agents/${agentId}/revoke`)).status, 200)
  assert.equal(await agent.exited, 3)
  assert.ok(agent.logs.some((r) => r.msg === 'raw' && /refused this agent's identity \(this agent has been revoked\); enrol it again/.test(String(r.line))))
  const refused = await status(stateDir)
  assert.deepEqual([refused.code, refused.report.status, refused.report.last_error], [3, 'refused', 'this agent has been revoked'])

  const again = start(stateDir)
  assert.equal(await again.exited, 3, 'refused in the handshake too')
})

test('a deleted agent exits 3: the controller no longer knows its identity', async () => {
  const { agentId, stateDir } = await enrollAgent(controller)
  const agent = start(stateDir)
  await agent.waitFor('agent.session_ready')
  assert.equal((await api('DELETE', `/api/v1/agents/${agentId}`)).status, 200)
  assert.equal(await agent.exited, 3)
  const again = start(stateDir)
  assert.equal(await again.exited, 3)
  assert.ok(again.logs.some((r) => r.msg === 'agent.identity_refused' && /unknown agent/.test(String(r.details))))
})
