import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import { call, createTestUser, type CallResult } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { generateCertificate, generateSshKey, hasOpenssl, hasSshKeygen } from '../../../test/harness/keys.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { createLogger } from '../log.ts'
import { credential } from './credentials.sql.ts'
import { createApp } from '../app.ts'
import { openCredential } from './service.ts'

const logLines: string[] = []
let t: TestContext
before(async () => {
  const destination = new Writable({ write: (chunk, _e, cb) => (logLines.push(String(chunk)), cb()) })
  t = await createTestContext({ log: createLogger({ level: 'trace', destination }) })
})
after(() => t.close())

/**
 * A secret in the forms it could leak in: as is, JSON-escaped, and (for PEM) each line of its body,
 * except lines that are the public key: an OpenSSH private key file carries its public key in clear.
 */
function leakForms(value: string, publicKeys: string[]): string[] {
  const forms = [value, JSON.stringify(value).slice(1, -1)]
  if (value.includes('-----BEGIN')) forms.push(...value.split('\n').filter((l) => l.length >= 24 && !l.startsWith('-----') && !publicKeys.some((p) => p.includes(l))))
  return forms
}

test('no credential secret reaches a response, a log line, an audit row or the credential table in clear', { skip: !(hasSshKeygen && hasOpenssl) && 'needs ssh-keygen and openssl' }, async () => {
  const app = createApp(t.ctx, { uiDir: '/nonexistent' })
  const admin = await createTestUser(t.ctx, 'admin')
  const operator = await createTestUser(t.ctx, 'operator')
  const sshKey = generateSshKey('rsa', { passphrase: 'ssh key passphrase 1', bits: 2048 })
  const sshKey2 = generateSshKey('ed25519', { passphrase: 'ssh key passphrase 2' })
  const cert = generateCertificate({ passphrase: 'certificate passphrase' })
  const secrets: Record<string, string> = {
    sshPassword: 'ssh-password-Zq81',
    sshPassword2: 'ssh-password-updated-Yw52',
    sshPrivateKey: sshKey.privateKey,
    sshPassphrase: 'ssh key passphrase 1',
    sshPrivateKey2: sshKey2.privateKey,
    sshPassphrase2: 'ssh key passphrase 2',
    wrongPassphrase: 'wrong passphrase attempt',
    winrmPassword: 'winrm-password-Kp33',
    httpBasicPassword: 'http-basic-password-Rt09',
    httpToken: 'bearer-token-value-Hh77',
    httpApiKey: 'api-key-value-Uu21',
    httpHeaderValue: 'custom-header-secret-Mm64',
    dbPassword: 'database-password-Ee45',
    snmpCommunity: 'snmp-community-Vv12',
    snmpAuth: 'snmp-auth-password-Nn90',
    snmpPriv: 'snmp-priv-password-Jj38',
    certPrivateKey: cert.privateKey,
    certPassphrase: 'certificate passphrase',
  }
  const responses: { what: string; res: CallResult }[] = []
  const send = async (what: string, method: string, path: string, body?: unknown, token = admin.token) => {
    const res = await call(app, method, `/api/v1/credentials${path}`, { token, body })
    responses.push({ what, res })
    return res
  }
  const bodies = [
    { name: 'ssh-pw', type: 'ssh_password', username: 'root', password: secrets.sshPassword },
    { name: 'ssh-key', type: 'ssh_key', username: 'deploy', private_key: secrets.sshPrivateKey, passphrase: secrets.sshPassphrase },
    { name: 'winrm', type: 'winrm', username: 'svc', password: secrets.winrmPassword, domain: 'CORP' },
    { name: 'http-basic', type: 'http_auth', scheme: 'basic', username: 'u', password: secrets.httpBasicPassword },
    { name: 'http-bearer', type: 'http_auth', scheme: 'bearer', token: secrets.httpToken },
    { name: 'http-key', type: 'http_auth', scheme: 'api_key', header_name: 'X-API-Key', api_key: secrets.httpApiKey },
    { name: 'http-headers', type: 'http_auth', scheme: 'headers', headers: { 'X-Tenant-Secret': secrets.httpHeaderValue } },
    { name: 'db', type: 'database', driver: 'mysql', host: 'db', port: 3306, database: 'app', username: 'app', password: secrets.dbPassword, tls_ca: cert.certificate },
    { name: 'snmp-v2', type: 'snmp', version: 'v2c', community: secrets.snmpCommunity },
    { name: 'snmp-v3', type: 'snmp', version: 'v3', username: 'mon', auth_protocol: 'sha', auth_password: secrets.snmpAuth, priv_protocol: 'aes', priv_password: secrets.snmpPriv },
    { name: 'cert', type: 'certificate', certificate: cert.certificate, private_key: secrets.certPrivateKey, passphrase: secrets.certPassphrase },
  ]
  const ids: Record<string, string> = {}
  for (const body of bodies) {
    const res = await send(`create ${body.name}`, 'POST', '', body)
    assert.equal(res.status, 201, `${body.name}: ${JSON.stringify(res.body)}`)
    ids[body.name] = res.body.id
  }
  const refused = await send('wrong passphrase', 'POST', '', { name: 'ssh-key-bad', type: 'ssh_key', username: 'x', private_key: secrets.sshPrivateKey2, passphrase: secrets.wrongPassphrase })
  assert.equal(refused.status, 400)
  assert.equal((await send('update password', 'PUT', `/${ids['ssh-pw']}`, { password: secrets.sshPassword2 })).status, 200)
  assert.equal((await send('update key', 'PUT', `/${ids['ssh-key']}`, { private_key: secrets.sshPrivateKey2, passphrase: secrets.sshPassphrase2 })).status, 200)
  assert.equal((await send('update bad', 'PUT', `/${ids['snmp-v3']}`, { priv_password: 'short' })).status, 400)
  await send('list admin', 'GET', '?limit=500')
  await send('list operator', 'GET', '?limit=500', undefined, operator.token)
  for (const [name, id] of Object.entries(ids)) await send(`get ${name}`, 'GET', `/${id}`, undefined, operator.token)
  for (const id of Object.values(ids)) await openCredential(t.ctx, id)
  assert.equal((await send('delete', 'DELETE', `/${ids['snmp-v2']}`)).status, 200)

  const auditRows = JSON.stringify(await t.ctx.db.select().from(auditLog))
  assert.ok(auditRows.includes('credentials.create') && auditRows.includes('credentials.update') && auditRows.includes('credentials.delete'), 'the audit trail recorded the changes')
  const logs = logLines.join('')
  assert.ok(logs.includes('http.request') && logs.includes('credential.opened'), 'the log was captured')
  const stored = JSON.stringify(await t.ctx.db.select().from(credential))
  for (const [name, value] of Object.entries(secrets)) {
    for (const form of leakForms(value, [sshKey.publicKey, sshKey2.publicKey])) {
      assert.ok(!logs.includes(form), `${name} leaked into the log`)
      assert.ok(!auditRows.includes(form), `${name} leaked into the audit trail`)
      assert.ok(!stored.includes(form), `${name} is stored in clear`)
      const shownIn = responses.filter((r) => JSON.stringify(r.res.body).includes(form) || [...r.res.headers.values()].some((h) => h.includes(form))).map((r) => r.what)
      assert.deepEqual(shownIn, [], `${name} appeared in responses: ${shownIn.join(', ')}`)
    }
  }
})
