import assert from 'node:assert/strict'
import { after, before, test } from 'node:test'
import { certificateFingerprint } from '../../controller/src/tls/pki.ts'
import { issueCert, writeChainFiles, type IssuedCert } from '../../controller/src/tls/test-fixture.ts'
import { AgentProcess, enrollAgent, TestController } from '../harness/agents.ts'
import { runCli, tempDataDir } from '../harness/controller-process.ts'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'
import { httpsRequest } from '../harness/https.ts'

// Bring-your-own TLS (OPSC_TLS_CERT / OPSC_TLS_KEY): agents must enrol with the fingerprint the controller shows.
let root: IssuedCert
let server: IssuedCert
let controller: TestController
let agent: AgentProcess | undefined

before(async () => {
  root = await issueCert('CN=Operator Root CA, O=Example', null, true)
  server = await issueCert('CN=localhost', root, false)
  const { certFile, keyFile } = await writeChainFiles([server, root])
  controller = await TestController.start({ OPSC_TLS_CERT: certFile, OPSC_TLS_KEY: keyFile })
})
after(async () => {
  await agent?.kill('SIGTERM')
  await controller?.stop()
})

test('with an own certificate chain, the shown CA fingerprint is the root CA and a real agent enrols and connects with it', async () => {
  assert.equal(controller.running.caFingerprint, certificateFingerprint(root.pem))
  assert.equal(controller.ctx.caFingerprint, certificateFingerprint(root.pem))
  // HTTPS presents the same chain: a client trusting only the operator's root accepts it.
  const health = await httpsRequest(`https://127.0.0.1:${controller.running.httpPort}/healthz`, { ca: root.pem })
  assert.equal(health.status, 200)

  const { stateDir } = await enrollAgent(controller)
  // The agent trusts the pinned root from now on: the session is verified against it alone.
  agent = AgentProcess.start(stateDir)
  await agent.waitFor('agent.session_ready')
})

test('through an intermediate CA: the agent pins the root, checks the path at enrolment and connects', async () => {
  const issuing = await issueCert('CN=Operator Issuing CA, O=Example', root, true)
  const viaIntermediate = await issueCert('CN=localhost', issuing, false)
  const { certFile, keyFile } = await writeChainFiles([viaIntermediate, issuing, root])
  const second = await TestController.start({ OPSC_TLS_CERT: certFile, OPSC_TLS_KEY: keyFile })
  let viaAgent: AgentProcess | undefined
  try {
    assert.equal(second.running.caFingerprint, certificateFingerprint(root.pem))
    const { stateDir } = await enrollAgent(second)
    viaAgent = AgentProcess.start(stateDir)
    await viaAgent.waitFor('agent.session_ready')
  } finally {
    await viaAgent?.kill('SIGTERM')
    await second.stop()
  }
})

test('a certificate file without its CA stops the controller with exit code 2 and says what the file must hold', async () => {
  const { certFile, keyFile } = await writeChainFiles([server])
  const databaseUrl = (await testBackend()) === 'postgres' ? await createPostgresDatabase({ migrated: false }) : undefined
  try {
    const res = await runCli(['controller'], {
      OPSC_DATA_DIR: tempDataDir(),
      OPSC_HTTP_PORT: '0',
      OPSC_GRPC_PORT: '0',
      OPSC_BIND: '127.0.0.1',
      OPSC_TLS_CERT: certFile,
      OPSC_TLS_KEY: keyFile,
      ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
    })
    assert.equal(res.code, 2, res.stderr)
    assert.match(res.stderr, /^opsconductor: OPSC_TLS_CERT: .*chain\.pem lacks the certificate of the CA that issued the server certificate \(CN=Operator Root CA, O=Example\), so agents have no CA to pin; put the server certificate first/m)
  } finally {
    if (databaseUrl) await dropPostgresDatabase(databaseUrl)
  }
})
