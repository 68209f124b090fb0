// A rogue client against the agent gateway: garbage before and after the TLS handshake, broken
// HTTP/2 prefaces, gRPC messages whose length prefix lies (larger than the body, 2 GiB, over the
// receive limit), random protobuf bytes as Enroll/Connect messages, unknown fields, streams that send
// half a message and stall, many streams at once. The controller must stay up, keep serving gRPC
// health and a real agent that connects afterwards, and its memory must settle.
//
// OPSC_FUZZ_GRPC_ROUNDS (default 3) repeats the whole barrage for a long variant.
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import http2 from 'node:http2'
import net from 'node:net'
import path from 'node:path'
import tls from 'node:tls'
import { after, before, test } from 'node:test'
import { AgentProcess, enrollAgent, TestController } from '../harness/agents.ts'
import { grpcHealthCheck } from '../harness/grpc.ts'
import { Rng, settledMemory } from './fuzz-lib.ts'

const ROUNDS = Number(process.env.OPSC_FUZZ_GRPC_ROUNDS ?? 3)
const SERVICE = '/opsconductor.agent.v1.AgentService'
const METHODS = ['GetControllerInfo', 'Enroll', 'Connect']

let controller: TestController
let ca: string
let agent: AgentProcess | undefined

before(async () => {
  controller = await TestController.start({ OPSC_AGENT_HEARTBEAT_MS: '1000', OPSC_LOG_LEVEL: 'silent' })
  ca = readFileSync(path.join(controller.dataDir, 'tls', 'ca.crt'), 'utf8')
})
after(async () => {
  await agent?.kill('SIGTERM')
  await controller?.stop()
})

const port = () => controller.grpcPort

/** A gRPC length-prefixed message: flag byte, 4-byte big-endian length, then the bytes. */
function framed(payload: Buffer, opts: { declared?: number; compressed?: boolean } = {}): Buffer {
  const head = Buffer.alloc(5)
  head[0] = opts.compressed ? 1 : 0
  head.writeUInt32BE(opts.declared ?? payload.length, 1)
  return Buffer.concat([head, payload])
}

/** Random protobuf-looking bytes: valid tags with random wire types and values, unknown field numbers. */
function randomProtobuf(rng: Rng): Buffer {
  const parts: Buffer[] = []
  for (let i = 0; i < 1 + rng.int(12); i++) {
    const field = rng.pick([1, 2, 3, 4, 5, 15, 16, 999, 536870911])
    const wire = rng.pick([0, 1, 2, 5, 3, 4, 6, 7])
    parts.push(varint(field * 8 + wire))
    if (wire === 0) parts.push(varint(rng.int(2 ** 31)))
    else if (wire === 1) parts.push(rng.bytes(8))
    else if (wire === 5) parts.push(rng.bytes(4))
    else if (wire === 2) {
      const len = rng.pick([0, 1, 10, 100, 2 ** 28, 0xffffffff])
      parts.push(varint(len), rng.bytes(Math.min(len, 64)))
    }
  }
  return rng.chance(0.2) ? rng.bytes(rng.int(500)) : Buffer.concat(parts)
}

function varint(n: number): Buffer {
  const out: number[] = []
  let v = n
  while (v > 127) {
    out.push((v % 128) | 128)
    v = Math.floor(v / 128)
  }
  out.push(v)
  return Buffer.from(out)
}

/** Writes `bytes` once connected; resolves when the server closes the socket or after `ms`. */
function sendThenDrain(socket: net.Socket, bytes: Buffer, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve()
    }
    const timer = setTimeout(done, ms)
    socket.once(socket instanceof tls.TLSSocket ? 'secureConnect' : 'connect', () => socket.write(bytes))
    socket.on('data', () => {})
    socket.on('error', done)
    socket.on('close', done)
  })
}

/** Raw TLS to the gateway, then `bytes`. */
const tlsThenBytes = (bytes: Buffer, ms = 2000) => sendThenDrain(tls.connect({ host: '127.0.0.1', port: port(), servername: 'localhost', ca, ALPNProtocols: ['h2'] }), bytes, ms)

/** Plain TCP garbage where a TLS ClientHello should be. */
const tcpGarbage = (bytes: Buffer, ms = 2000) => sendThenDrain(net.connect(port(), '127.0.0.1'), bytes, ms)

function h2session(): Promise<http2.ClientHttp2Session> {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://127.0.0.1:${port()}`, { ca, servername: 'localhost' })
    session.once('connect', () => resolve(session))
    session.once('error', reject)
  })
}

interface StreamOutcome {
  status: string
}

/**
 * One gRPC call with hand-made bytes. `stall` leaves the stream open after writing (half a message);
 * otherwise the request side ends and the outcome is the grpc-status (or how the stream ended).
 */
function rawCall(session: http2.ClientHttp2Session, method: string, body: Buffer, opts: { stall?: boolean; contentType?: string; timeoutMs?: number } = {}): { outcome: Promise<StreamOutcome>; stream: http2.ClientHttp2Stream } {
  const stream = session.request({
    ':method': 'POST',
    ':path': method.startsWith('/') ? method : `${SERVICE}/${method}`,
    'content-type': opts.contentType ?? 'application/grpc',
    te: 'trailers',
  })
  const outcome = new Promise<StreamOutcome>((resolve) => {
    let status = 'no-status'
    const timer = setTimeout(() => {
      stream.close(http2.constants.NGHTTP2_CANCEL)
      resolve({ status: opts.stall ? 'stalled' : 'timeout' })
    }, opts.timeoutMs ?? 30_000)
    stream.on('response', (headers) => {
      if (headers['grpc-status'] !== undefined) status = `grpc-${headers['grpc-status']}`
      else status = `http-${headers[':status']}`
    })
    stream.on('trailers', (trailers) => {
      if (trailers['grpc-status'] !== undefined) status = `grpc-${trailers['grpc-status']}`
    })
    stream.on('data', () => {})
    stream.on('error', (err: NodeJS.ErrnoException) => {
      status = `error-${err.code ?? err.message}`
    })
    stream.on('close', () => {
      clearTimeout(timer)
      resolve({ status: status === 'no-status' && stream.rstCode ? `rst-${stream.rstCode}` : status })
    })
  })
  stream.on('error', () => {})
  if (opts.stall) stream.write(body)
  else stream.end(body)
  return { outcome, stream }
}

async function barrage(rng: Rng, tally: Map<string, number>): Promise<number> {
  let sent = 0
  const count = (s: string) => tally.set(s, (tally.get(s) ?? 0) + 1)

  // 1. Garbage instead of a ClientHello, and garbage / broken prefaces after a good handshake.
  const garbage: Promise<void>[] = []
  for (let i = 0; i < 20; i++) garbage.push(tcpGarbage(rng.bytes(1 + rng.int(4096)), 1000))
  for (let i = 0; i < 20; i++) garbage.push(tlsThenBytes(rng.bytes(1 + rng.int(64 * 1024)), 1000))
  for (const preface of ['GET / HTTP/1.1\r\nHost: x\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n', 'PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n']) {
    garbage.push(tlsThenBytes(Buffer.concat([Buffer.from(preface), rng.bytes(rng.int(2048))]), 1000))
  }
  // A valid preface followed by frames of random type, flags, stream id and an absurd length.
  for (let i = 0; i < 20; i++) {
    const frame = Buffer.alloc(9)
    frame.writeUIntBE(rng.pick([0, 8, 16384, 16385, 0xffffff]), 0, 3)
    frame[3] = rng.int(256)
    frame[4] = rng.int(256)
    frame.writeUInt32BE(rng.int(2 ** 31), 5)
    garbage.push(tlsThenBytes(Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), frame, rng.bytes(rng.int(1024))]), 1000))
  }
  await Promise.all(garbage)
  sent += garbage.length

  // 2. Well-formed HTTP/2, hostile gRPC messages.
  const sessions = await Promise.all(Array.from({ length: 5 }, () => h2session()))
  const calls: Promise<StreamOutcome>[] = []
  const stalled: http2.ClientHttp2Stream[] = []
  for (let i = 0; i < 500; i++) {
    const session = sessions[i % sessions.length]!
    const method = rng.pick(METHODS)
    let body: Buffer
    let stall = false
    let contentType: string | undefined
    switch (rng.int(9)) {
      case 0: // length prefix larger than the body, then end of stream
        body = framed(rng.bytes(rng.int(100)), { declared: 1000 + rng.int(100_000) })
        break
      case 1: // 2 GiB (and 4 GiB - 1) declared
        body = framed(rng.bytes(rng.int(100)), { declared: rng.pick([2 ** 31, 2 ** 32 - 1]) })
        break
      case 2: // over the 16 MiB receive limit, declared only
        body = framed(rng.bytes(1024), { declared: 17 * 1024 * 1024 })
        break
      case 3: // compressed flag with no compression negotiated
        body = framed(randomProtobuf(rng), { compressed: true })
        break
      case 4: // half a message, then silence
        body = framed(rng.bytes(100), { declared: 10_000 })
        stall = true
        break
      case 5: // not gRPC at all
        body = rng.bytes(rng.int(2000))
        contentType = rng.pick(['application/json', 'text/plain', 'application/grpc+json', ''])
        break
      case 6: // unknown method
        body = framed(randomProtobuf(rng))
        calls.push(rawCall(session, rng.pick(['/x.Y/Z', `${SERVICE}/Nope`, '/', '/../../etc/passwd']), body).outcome)
        continue
      case 7: // several messages in one unary call
        body = Buffer.concat([framed(randomProtobuf(rng)), framed(randomProtobuf(rng))])
        break
      default: // random protobuf (unknown fields, bad wire types, huge declared lengths)
        body = framed(randomProtobuf(rng))
    }
    const call = rawCall(session, method, body, { stall, contentType, timeoutMs: stall ? 3000 : 30_000 })
    if (stall) stalled.push(call.stream)
    calls.push(call.outcome)
  }
  const outcomes = await Promise.all(calls)
  for (const o of outcomes) count(o.status)
  sent += calls.length
  for (const s of sessions) s.destroy()
  return sent
}

test('the agent gateway survives a rogue client: stays up, keeps serving a real agent, memory settles', async () => {
  assert.equal(await grpcHealthCheck(controller.grpcAddress, ca), 'SERVING')
  const rng = new Rng(Number(process.env.OPSC_FUZZ_SEED ?? 777))
  const tally = new Map<string, number>()
  // One round to warm up (TLS contexts, HTTP/2 sessions, JIT) before the baseline.
  await barrage(rng, tally)
  const memBefore = await settledMemory()
  const started = Date.now()
  let sent = 0
  for (let r = 0; r < ROUNDS; r++) sent += await barrage(rng, tally)
  const seconds = (Date.now() - started) / 1000

  assert.equal(await grpcHealthCheck(controller.grpcAddress, ca), 'SERVING', 'gRPC health still answers')
  // A real agent enrols and connects after the barrage.
  const enrolled = await enrollAgent(controller)
  agent = AgentProcess.start(enrolled.stateDir)
  await agent.waitFor('agent.session_ready', {}, 60_000)
  const memAfter = await settledMemory()
  console.log(
    `grpc fuzz: ${sent} hostile connections/calls in ${seconds.toFixed(1)} s; outcomes ${JSON.stringify(Object.fromEntries([...tally].sort()))}; ` +
      `RSS ${memBefore.rssMiB} → ${memAfter.rssMiB} MiB, heap ${memBefore.heapMiB} → ${memAfter.heapMiB} MiB (controller in-process)`,
  )
  // Every call that did not deliberately stall was answered (a status or a reset), none hung.
  assert.equal(tally.get('timeout') ?? 0, 0, 'no call went unanswered')
  assert.ok(memAfter.rssMiB - memBefore.rssMiB < 100, `RSS grew by ${memAfter.rssMiB - memBefore.rssMiB} MiB`)
  assert.ok(memAfter.heapMiB - memBefore.heapMiB < 32, `heap grew by ${memAfter.heapMiB - memBefore.heapMiB} MiB`)
})
