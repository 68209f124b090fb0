import assert from 'node:assert/strict'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { before, test } from 'node:test'
import { Hono } from 'hono'
import { httpsRequest } from '../../../test/harness/https.ts'
import type { AppEnv } from '../context.ts'
import { ensureTls, type TlsMaterial } from '../tls/pki.ts'
import { startHttpServer } from './server.ts'

let tls: TlsMaterial
before(async () => {
  tls = await ensureTls({ dataDir: mkdtempSync(path.join(tmpdir(), 'opsc-http-')) })
})

function slowApp(release: Promise<void>) {
  return new Hono<AppEnv>()
    .get('/slow', async (c) => {
      await release
      return c.text('finished')
    })
    .get('/fast', (c) => c.text('fast'))
}

test('serves HTTPS that verifies against the generated CA', async () => {
  const server = await startHttpServer({ app: slowApp(Promise.resolve()), tls, host: '127.0.0.1', port: 0 })
  const res = await httpsRequest(`https://localhost:${server.port}/fast`, { ca: tls.caCertPem! })
  assert.equal(res.status, 200)
  assert.equal(res.body, 'fast')
  await server.close(1000)
})

test('graceful close lets an in-flight request finish and refuses new connections', async () => {
  let finish!: () => void
  const release = new Promise<void>((r) => (finish = r))
  const server = await startHttpServer({ app: slowApp(release), tls, host: '127.0.0.1', port: 0 })
  const url = `https://localhost:${server.port}`
  const inFlight = httpsRequest(`${url}/slow`, { ca: tls.caCertPem! })
  await new Promise((r) => setTimeout(r, 200))
  const closed = server.close(5000)
  await new Promise((r) => setTimeout(r, 100))
  await assert.rejects(httpsRequest(`${url}/fast`, { ca: tls.caCertPem!, headers: { connection: 'close' } }), /ECONNREFUSED/)
  finish()
  const res = await inFlight
  assert.equal(res.status, 200)
  assert.equal(res.body, 'finished')
  await closed
})

test('graceful close cuts requests still running after the grace period', async () => {
  const server = await startHttpServer({ app: slowApp(new Promise(() => {})), tls, host: '127.0.0.1', port: 0 })
  const inFlight = httpsRequest(`https://localhost:${server.port}/slow`, { ca: tls.caCertPem! })
  await new Promise((r) => setTimeout(r, 200))
  await server.close(300)
  await assert.rejects(inFlight, /socket hang up|ECONNRESET/)
})

test('a port already in use is a ListenError naming the setting', async () => {
  const first = await startHttpServer({ app: slowApp(Promise.resolve()), tls, host: '127.0.0.1', port: 0 })
  await assert.rejects(startHttpServer({ app: slowApp(Promise.resolve()), tls, host: '127.0.0.1', port: first.port }), {
    name: 'ListenError',
    message: `OPSC_HTTP_PORT: port ${first.port} on 127.0.0.1 is already in use`,
  })
  await first.close(1000)
})
