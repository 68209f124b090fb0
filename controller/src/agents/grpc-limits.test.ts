// Slow and idle clients against the agent gateway: each holds a connection doing nothing useful; the
// gateway must cut them by its own limits and keep serving real clients meanwhile.
import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import net from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import tls from 'node:tls'
import { after, before, test } from 'node:test'
import { grpcHealthCheck } from '../../../test/harness/grpc.ts'
import { createLogger } from '../log.ts'
import { ensureTls, type TlsMaterial } from '../tls/pki.ts'
import { startGrpcServer, type ConnectionLimits, type RunningGrpcServer } from './grpc-server.ts'

let material: TlsMaterial
const servers: RunningGrpcServer[] = []
const sockets: net.Socket[] = []

before(async () => {
  material = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-grpc-limits-')) })
})
after(async () => {
  for (const s of sockets) s.destroy()
  await Promise.all(servers.map((s) => s.close(500)))
})

async function gateway(limits: Partial<ConnectionLimits>): Promise<RunningGrpcServer> {
  const server = await startGrpcServer({ tls: material, host: '127.0.0.1', port: 0, log: createLogger({ level: 'silent' }), version: 't', installationId: 'i', limits })
  server.setServing('SERVING')
  servers.push(server)
  return server
}

/** Resolves with how long the server kept the socket open (ms) once it closes it. */
function closedAfter(socket: net.Socket): Promise<number> {
  const t0 = performance.now()
  sockets.push(socket)
  socket.on('error', () => {})
  socket.resume() // a paused socket would never see the server's FIN
  return new Promise((resolve) => socket.once('close', () => resolve(performance.now() - t0)))
}

const rawTcp = (port: number) => net.connect(port, '127.0.0.1')
const tlsOnly = (port: number) => tls.connect({ port, host: '127.0.0.1', ca: material.caCertPem!, servername: 'localhost', ALPNProtocols: ['h2'] })
// Generous: the point is that they close at all, long before Node's defaults (120 s handshake, never idle).
const CUT_WITHIN_MS = 30_000 // under the test's own timeout

test('a client that opens TCP and never starts TLS is cut after the handshake timeout', { timeout: 60_000 }, async () => {
  const server = await gateway({ tlsHandshakeTimeoutMs: 300 })
  const held = await Promise.all(Array.from({ length: 20 }, () => closedAfter(rawTcp(server.port))))
  for (const ms of held) {
    assert.ok(ms >= 250, `closed only after the timeout, not before (${ms} ms)`)
    assert.ok(ms < CUT_WITHIN_MS, `closed by the gateway (${ms} ms)`)
  }
})

test('a client that finishes TLS but never speaks HTTP/2 is closed as idle; a real client is served meanwhile', { timeout: 60_000 }, async () => {
  const server = await gateway({ idleConnectionMs: 500 })
  const silent = Array.from({ length: 10 }, () => closedAfter(tlsOnly(server.port)))
  assert.equal(await grpcHealthCheck(`localhost:${server.port}`, material.caCertPem!), 'SERVING')
  for (const ms of await Promise.all(silent)) assert.ok(ms >= 400 && ms < CUT_WITHIN_MS, `idle connection closed after ${ms} ms`)
})

test('connections beyond the limit are closed at once, and service resumes when they go', { timeout: 60_000 }, async () => {
  const server = await gateway({ maxConnections: 5, tlsHandshakeTimeoutMs: 60_000 })
  const holders = Array.from({ length: 5 }, () => rawTcp(server.port))
  for (const s of holders) sockets.push(s)
  await Promise.all(holders.map((s) => new Promise((resolve) => s.once('connect', resolve))))
  await new Promise((r) => setTimeout(r, 100)) // the server has counted them
  const over = await closedAfter(rawTcp(server.port))
  assert.ok(over < 5_000, `the sixth connection was refused (${over} ms)`)
  await assert.rejects(grpcHealthCheck(`localhost:${server.port}`, material.caCertPem!, '', 1500))
  for (const s of holders) s.destroy()
  let status: string | undefined
  for (let i = 0; i < 20 && status !== 'SERVING'; i++) status = await grpcHealthCheck(`localhost:${server.port}`, material.caCertPem!, '', 2000).catch(() => undefined)
  assert.equal(status, 'SERVING')
})
