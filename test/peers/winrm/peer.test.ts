import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { randomInt } from 'node:crypto'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { startWinrmPeer, winrmPeerUnavailable, type WinrmPeer } from '../../harness/winrm-peer.ts'

// The peer driven by pywinrm, the reference WinRM client (see README.md).
const skip = winrmPeerUnavailable()
const REFERENCE_CLIENT = path.join(import.meta.dirname, 'reference-client.py')

type RefResult = { ok: true; [key: string]: unknown } | { ok: false; error: string; message: string }

function pywinrm(peer: WinrmPeer, spec: Record<string, unknown>, caFile?: string): Promise<RefResult> {
  const full = { endpoint: peer.url, username: peer.username, password: peer.password, ca: caFile, ...spec }
  return new Promise((resolve, reject) => {
    execFile('/usr/bin/python3', [REFERENCE_CLIENT, JSON.stringify(full)], { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`reference client failed: ${err.message}\n${stderr}\npeer log:\n${peer.log()}`))
      resolve(JSON.parse(stdout) as RefResult)
    })
  })
}

function ok(res: RefResult, peer: WinrmPeer): Record<string, unknown> {
  assert.ok(res.ok, `pywinrm failed: ${JSON.stringify(res)}\npeer log:\n${peer.log()}`)
  return res
}

/** A POST with a hand-written envelope (prefixes unlike pywinrm's) and Basic auth. */
function rawPost(peer: WinrmPeer, body: string, auth = `${peer.username}:${peer.password}`): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
  const request = peer.https ? httpsRequest : httpRequest
  return new Promise((resolve, reject) => {
    const req = request(peer.url, {
      method: 'POST',
      ca: peer.caPem,
      agent: false,
      headers: { 'Content-Type': 'application/soap+xml;charset=UTF-8', Authorization: `Basic ${Buffer.from(auth).toString('base64')}` },
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

const envelope = (action: string, shellId: string, body: string) => `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://schemas.xmlsoap.org/ws/2004/08/addressing"
  xmlns:wsman="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd" xmlns:shell="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">
  <soap:Header>
    <wsa:To>http://127.0.0.1/wsman</wsa:To>
    <wsa:ReplyTo><wsa:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</wsa:Address></wsa:ReplyTo>
    <wsa:Action>${action}</wsa:Action>
    <wsa:MessageID>uuid:0D64F4C4-1111-2222-3333-444455556666</wsa:MessageID>
    <wsman:ResourceURI>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/cmd</wsman:ResourceURI>
    <wsman:MaxEnvelopeSize>153600</wsman:MaxEnvelopeSize>
    <wsman:OperationTimeout>PT5S</wsman:OperationTimeout>
    <wsman:SelectorSet><wsman:Selector Name="ShellId">${shellId}</wsman:Selector></wsman:SelectorSet>
  </soap:Header>
  <soap:Body>${body}</soap:Body>
</soap:Envelope>`

function processesMatching(pattern: string): string {
  return spawnSync('pgrep', ['-af', pattern], { encoding: 'utf8' }).stdout.split('\n').filter((l) => l && !l.includes('pgrep')).join('\n')
}

describe('WinRM peer over HTTP with NTLM and message encryption', { skip }, () => {
  let peer: WinrmPeer
  before(async () => {
    peer = await startWinrmPeer({ https: false, maxShellsPerUser: 3 })
  })
  after(() => peer?.stop())

  test('runs a command and returns its stdout and exit code', async () => {
    const res = ok(await pywinrm(peer, { op: 'run_cmd', transport: 'ntlm', command: 'echo', args: ['hello'] }), peer)
    assert.equal(res.stdout, 'hello\n')
    assert.equal(res.status_code, 0)
    assert.match(peer.log(), /auth=negotiate user=opscwinrm\w+ enc=yes action=Create/)
  })

  test('sends PowerShell stderr as CLIXML that pywinrm decodes, keeping a non-zero exit code', async () => {
    const script = "echo out\necho 'bad <thing> & more' >&2\necho second >&2\nexit 4"
    const res = ok(await pywinrm(peer, { op: 'run_ps', transport: 'ntlm', script }), peer)
    assert.equal(res.stdout, 'out\n')
    assert.equal(res.stderr, 'bad <thing> & more\nsecond')
    assert.match(String(res.raw_stderr), /^#< CLIXML\r\n<Objs Version="1\.1\.0\.1" xmlns="http:\/\/schemas\.microsoft\.com\/powershell\/2004\/04"><S S="Error">bad &lt;thing&gt; &amp; more_x000D__x000A_<\/S>/)
    assert.equal(res.status_code, 4)
  })

  test('runs the twin of an OpsConductor PowerShell script', async () => {
    const res = ok(await pywinrm(peer, { op: 'run_ps', transport: 'ntlm', script: '# opsc:selftest/2.1\n$x = 1\n' }), peer)
    assert.equal(res.stdout, 'twin=selftest version=2.1\nscript-lines=2\n')
    assert.equal(res.stderr, 'twin stderr line')
    assert.equal(res.status_code, 3)
  })

  test('feeds stdin sent with rsp:Send to the command, End closing it', async () => {
    const res = ok(await pywinrm(peer, { op: 'stdin', transport: 'ntlm', command: 'tr', args: ['a-z', 'A-Z'], chunks: ['hello ', 'stdin\n'] }), peer)
    assert.equal(res.stdout, 'HELLO STDIN\n')
    assert.equal(res.status_code, 0)
  })

  test('rejects a wrong password with 401', async () => {
    const res = await pywinrm(peer, { op: 'run_cmd', transport: 'ntlm', command: 'echo', args: ['x'], password: `${peer.password}x` })
    assert.deepEqual([res.ok, !res.ok && res.error], [false, 'InvalidCredentialsError'])
  })

  test('refuses unencrypted SOAP after NTLM on HTTP (AllowUnencrypted=false)', async () => {
    const res = await pywinrm(peer, { op: 'unencrypted', transport: 'ntlm' })
    assert.deepEqual([res.ok, !res.ok && res.error], [false, 'InvalidCredentialsError'])
    assert.match(peer.log(), /refused an unencrypted message on HTTP/)
  })

  test('refuses Basic on HTTP', async () => {
    const res = await rawPost(peer, envelope('http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete', 'X', ''))
    assert.equal(res.status, 401)
    assert.deepEqual(res.headers['www-authenticate'], 'Negotiate')
  })

  test('answers a Receive that outlives OperationTimeout with the TimedOut fault; terminate kills the command', async () => {
    const marker = `3600.${randomInt(100000, 999999)}`
    const res = ok(await pywinrm(peer, { op: 'timeout_then_terminate', transport: 'ntlm', marker }), peer)
    assert.equal(res.raw_status, 500)
    const fault = String(res.raw_fault)
    assert.match(fault, /<s:Value>s:Receiver<\/s:Value><s:Subcode><s:Value>w:TimedOut<\/s:Value>/)
    assert.match(fault, /<f:WSManFault xmlns:f="http:\/\/schemas\.microsoft\.com\/wbem\/wsman\/1\/wsmanfault" Code="2150858793"/)
    assert.match(fault, /<a:RelatesTo>uuid:[0-9a-f-]+<\/a:RelatesTo>/)
    assert.equal(res.pywinrm, 'WinRMOperationTimeoutError')
    for (let i = 0; i < 40 && processesMatching(`sleep ${marker}`); i++) await new Promise((r) => setTimeout(r, 50))
    assert.equal(processesMatching(`sleep ${marker}`), '')
  })

  test('refuses a shell beyond MaxShellsPerUser with the quota fault', async () => {
    const res = ok(await pywinrm(peer, { op: 'quota', transport: 'ntlm', count: 4 }), peer)
    assert.equal(res.opened, 3)
    assert.match(String(res.error), /This user is allowed a maximum number of 3 concurrent shells, which has been exceeded/)
    assert.match(String(res.error), /'wsmanfault_code': '2150859173'/)
    assert.equal(res.after_close, 'ok')
  })
})

describe('WinRM peer over HTTPS', { skip }, () => {
  let peer: WinrmPeer
  let tmp: string
  let caFile: string
  before(async () => {
    peer = await startWinrmPeer({ https: true })
    tmp = mkdtempSync(path.join(tmpdir(), 'opsc-winrm-test-'))
    caFile = path.join(tmp, 'ca.pem')
    writeFileSync(caFile, peer.caPem!)
  })
  after(async () => {
    await peer?.stop()
    if (tmp) rmSync(tmp, { recursive: true, force: true })
  })

  test('runs a command with Basic auth, validating the certificate against the CA', async () => {
    const res = ok(await pywinrm(peer, { op: 'run_cmd', transport: 'basic', command: 'echo', args: ['over', 'tls'] }, caFile), peer)
    assert.equal(res.stdout, 'over tls\n')
    assert.equal(res.status_code, 0)
  })

  test('runs a command with NTLM (with channel binding) and no message encryption', async () => {
    const res = ok(await pywinrm(peer, { op: 'run_cmd', transport: 'ntlm', command: 'cmd', args: ['/c', 'echo', 'ntlm; exit 7'] }, caFile), peer)
    assert.equal(res.stdout, 'ntlm\n')
    assert.equal(res.status_code, 7)
    assert.match(peer.log(), /auth=negotiate user=opscwinrm\w+ enc=no action=Create/)
  })

  test('accepts the user as DOMAIN\\user', async () => {
    const res = ok(await pywinrm(peer, { op: 'run_cmd', transport: 'ntlm', username: `${peer.domain}\\${peer.username}`, command: 'echo', args: ['dom'] }, caFile), peer)
    assert.equal(res.stdout, 'dom\n')
  })

  test('rejects a wrong Basic password with 401', async () => {
    const res = await pywinrm(peer, { op: 'run_cmd', transport: 'basic', command: 'echo', args: ['x'], password: 'wrong' }, caFile)
    assert.deepEqual([res.ok, !res.ok && res.error], [false, 'InvalidCredentialsError'])
  })

  test('answers an unknown ShellId with the InvalidSelectors fault, whatever the request prefixes', async () => {
    const res = await rawPost(peer, envelope('http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Command', 'C0FFEE00-0000-0000-0000-000000000000',
      '<shell:CommandLine><shell:Command>echo</shell:Command></shell:CommandLine>'))
    assert.equal(res.status, 500)
    assert.match(res.body, /<s:Subcode><s:Value>w:InvalidSelectors<\/s:Value><\/s:Subcode>/)
    assert.match(res.body, /Code="2150858843"/)
    assert.match(res.body, /<a:RelatesTo>uuid:0D64F4C4-1111-2222-3333-444455556666<\/a:RelatesTo>/)
  })

  test('answers an envelope beyond MaxEnvelopeSize with the EncodingLimit fault', async () => {
    const res = await rawPost(peer, envelope('http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Send', 'X', `<!-- ${'x'.repeat(160_000)} -->`))
    assert.equal(res.status, 500)
    assert.match(res.body, /<s:Value>w:EncodingLimit<\/s:Value>/)
  })
})

describe('WinRM peer with AllowUnencrypted=true', { skip }, () => {
  let peer: WinrmPeer
  before(async () => {
    peer = await startWinrmPeer({ https: false, allowUnencrypted: true })
  })
  after(() => peer?.stop())

  test('accepts unencrypted NTLM and Basic over HTTP', async () => {
    const ntlm = ok(await pywinrm(peer, { op: 'unencrypted', transport: 'ntlm' }), peer)
    assert.equal(ntlm.stdout, 'plain\n')
    const basic = ok(await pywinrm(peer, { op: 'run_cmd', transport: 'basic', command: 'echo', args: ['basic'] }), peer)
    assert.equal(basic.stdout, 'basic\n')
  })
})
