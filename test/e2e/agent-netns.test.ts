import assert from 'node:assert/strict'
import { mkdtempSync, readlinkSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { and, asc, eq } from 'drizzle-orm'
import { agentOutput } from '../../controller/src/agents/assignments/assignments.sql.ts'
import { getAgent } from '../../controller/src/agents/service.ts'
import { Shell } from '../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { TestController, waitUntil } from '../harness/agents.ts'
import { ESTABLISHED_COUNTER, NetNamespace, PROBE_COUNTER, netnsUnavailable, type NamespacedAgent } from '../harness/netns.ts'

// The agent only ever dials out. Here it runs in a network namespace whose firewall drops every
// inbound new connection, with the controller on the host end of a veth pair; it must still enrol,
// connect and run work. The same firewall is shown to really drop a connection from the host.

const skip = await netnsUnavailable()
if (skip) console.log(`agent-netns: skipped: ${skip}`)

const TIMEOUT = { timeout: 180_000 }

let ns: NetNamespace
let controller: TestController | undefined
let agent: NamespacedAgent | undefined
/** The port a plain TCP server inside the namespace listens on (0.0.0.0), to probe the firewall. */
let probePort: number
/** Before the firewall was loaded: what the host saw connecting to the probe listener. */
let controlReply: string
let ruleset: string

before(async () => {
  if (skip) return
  ns = await NetNamespace.create()
  // A listener inside the namespace, on every address: whatever then keeps the host out is the firewall.
  const listener = ns.spawn(process.execPath, ['-e', "const s = require('net').createServer((c) => c.end('pong')).listen(0, '0.0.0.0', () => console.log(s.address().port))"], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  probePort = await new Promise<number>((resolve, reject) => {
    listener.stdout!.once('data', (d: Buffer) => resolve(Number(d.toString().trim())))
    listener.once('exit', (code) => reject(new Error(`probe listener exited (${code})`)))
  })
  // Control: with no ruleset the host reaches the listener, so the namespace and veth work.
  controlReply = await hostConnect(ns.nsAddress, probePort).then((r) => (r.kind === 'connected' ? r.data : `not connected: ${r.kind}`))
  ruleset = await ns.applyFirewall(probePort)
  controller = await TestController.start({ OPSC_BIND: ns.hostAddress, OPSC_TLS_SANS: ns.hostAddress, OPSC_AGENT_HEARTBEAT_MS: '1000' })
}, TIMEOUT)

after(async () => {
  await agent?.kill('SIGTERM')
  await ns?.destroy()
  await controller?.stop()
}, TIMEOUT)

test('the namespace firewall drops inbound connections from the host; inside the namespace the same listener answers', { ...TIMEOUT, skip }, async () => {
  assert.equal(controlReply, 'pong', 'before the firewall, the host reached the listener in the namespace (control)')
  assert.match(ruleset, /chain input \{\s*type filter hook input priority filter; policy drop;/)

  // From the host: the SYN reaches the namespace (the counter sees it, retransmits included) and is
  // dropped by the input policy, so the connection never opens (no refusal either: a silent drop).
  const before = await ns.counter(PROBE_COUNTER)
  const attempt = hostConnect(ns.nsAddress, probePort, 120_000)
  try {
    await waitUntil(async () => attempt.state !== 'pending' || (await ns.counter(PROBE_COUNTER)) >= before + 2, 60_000)
    assert.equal(attempt.state, 'pending', `the host's connect to a port behind the drop policy ended: ${JSON.stringify(await Promise.race([attempt, 'still open']))}`)
    assert.ok((await ns.counter(PROBE_COUNTER)) >= before + 2, 'the SYN and a retransmit reached the namespace and were dropped')
  } finally {
    attempt.cancel()
  }

  // From inside the namespace, to its own veth address: it answers.
  const inside = await ns.node([
    '-e',
    `const c = require('net').connect(${probePort}, '${ns.nsAddress}'); let d = ''; c.on('data', (x) => (d += x)); c.on('end', () => { process.stdout.write(d); process.exit(0) }); c.on('error', (e) => { console.error(e.message); process.exit(2) }); setTimeout(() => process.exit(3), 30000)`,
  ])
  assert.equal(inside.code, 0, inside.stderr)
  assert.equal(inside.stdout, 'pong')
})

test('an agent inside the firewalled namespace enrols, connects out and runs echo; it listens on nothing', { ...TIMEOUT, skip }, async () => {
  const ctrl = controller!
  const address = `${ns.hostAddress}:${ctrl.grpcPort}`
  const stateDir = path.join(mkdtempSync(path.join(tmpdir(), 'opsc-agent-netns-')), 'state')
  const enrolled = await ns.agentCli(['enroll', '--controller', address, '--token', await ctrl.enrollmentToken(), '--ca-fingerprint', ctrl.running.caFingerprint, '--state-dir', stateDir])
  assert.equal(enrolled.code, 0, `enroll failed: ${enrolled.stderr}`)
  const agentId = /enrolled as agent ([0-9a-f-]{36})/.exec(enrolled.stdout)![1]!

  agent = ns.startAgent(stateDir)
  await agent.waitFor('agent.session_ready')
  assert.equal(readlinkSync(`/proc/${agent.pid}/ns/net`), ns.netnsLink, 'the agent process runs inside the namespace')
  const listed = await getAgent(ctrl.ctx, agentId)
  assert.equal(listed.status, 'online')
  assert.equal(listed.address, ns.nsAddress, 'the controller saw the agent connect from the namespace')

  const { assignmentId, done } = await ctrl.dispatcher.dispatch(agentId, {
    case: 'exec',
    value: { command: { case: 'script', value: { shell: Shell.BASH, script: 'echo hello from the namespace; readlink /proc/self/ns/net' } } },
  })
  const outcome = await done
  assert.equal(outcome.status, 'succeeded')
  assert.equal(outcome.exitCode, 0)
  const rows = await ctrl.ctx.db
    .select({ data: agentOutput.data })
    .from(agentOutput)
    .where(and(eq(agentOutput.assignmentId, assignmentId), eq(agentOutput.stream, 1)))
    .orderBy(asc(agentOutput.seq))
  assert.equal(Buffer.concat(rows.map((r) => r.data)).toString(), `hello from the namespace\n${ns.netnsLink}\n`)

  // Everything the host sent in was admitted only as part of a connection the namespace opened.
  assert.ok((await ns.counter(ESTABLISHED_COUNTER)) > 0)
  const listening = await ns.exec('ss', ['-Hltunp'])
  assert.equal(listening.code, 0, listening.stderr)
  assert.ok(!listening.stdout.includes(`pid=${agent.pid},`), `the agent listens on a socket:\n${listening.stdout}`)
  const outbound = await ns.exec('ss', ['-Htnp', 'state', 'established', 'dst', `${ns.hostAddress}:${ctrl.grpcPort}`])
  assert.match(outbound.stdout, new RegExp(`${ns.nsAddress.replaceAll('.', '\\.')}:\\d+\\s+${ns.hostAddress.replaceAll('.', '\\.')}:${ctrl.grpcPort}\\s.*pid=${agent.pid},`), 'the agent holds its outbound connection')
})

type ConnectResult = { kind: 'connected'; data: string } | { kind: 'error'; code: string } | { kind: 'timeout' }

/** A TCP connect from the host (this process); the reply is read to the end when it connects. */
function hostConnect(host: string, port: number, timeoutMs = 30_000): Promise<ConnectResult> & { readonly state: 'pending' | 'connected' | 'failed'; cancel(): void } {
  const socket = net.connect({ host, port })
  let state: 'pending' | 'connected' | 'failed' = 'pending'
  const result = new Promise<ConnectResult>((resolve) => {
    let data = ''
    const timer = setTimeout(() => (socket.destroy(), resolve({ kind: 'timeout' })), timeoutMs)
    socket.on('connect', () => (state = 'connected'))
    socket.on('data', (d) => (data += d))
    socket.on('end', () => (clearTimeout(timer), socket.destroy(), resolve({ kind: 'connected', data })))
    socket.on('error', (err: NodeJS.ErrnoException) => ((state = 'failed'), clearTimeout(timer), resolve({ kind: 'error', code: err.code ?? err.message })))
    socket.on('close', () => clearTimeout(timer))
  })
  // (defineProperties, not Object.assign: assign would copy the getter's value once.)
  return Object.defineProperties(result, { state: { get: () => state }, cancel: { value: () => socket.destroy() } }) as ReturnType<typeof hostConnect>
}

