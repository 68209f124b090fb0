import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { createTestContext, type TestContext } from '../../../../test/harness/context.ts'
import { createCredential } from '../../credentials/service.ts'
import { createTarget, getTargetRow } from '../../targets/service.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { CopyInput, ExecInput } from '../exec-input.ts'
import { executionContext } from '../testing.ts'
import { closeWinrmPools, probeWinrm, runWinrmCopy, runWinrmExec } from './index.ts'

/*
 * Opt-in: the WinRM executors against a real Windows host, for what the test peer cannot prove
 * (real PowerShell, the copy receiver and facts script as PowerShell, Windows' own NTLM).
 *
 *   OPSC_TEST_WINRM_URL=https://win.example:5986/wsman   (http://…:5985/wsman for NTLM sealing)
 *   OPSC_TEST_WINRM_USER=Administrator   OPSC_TEST_WINRM_PASSWORD=…   [OPSC_TEST_WINRM_DOMAIN=CORP]
 *   [OPSC_TEST_WINRM_AUTH=ntlm|basic]  [OPSC_TEST_WINRM_CA=/path/ca.pem | OPSC_TEST_WINRM_INSECURE=1]
 */

const env = process.env
const skip = env.OPSC_TEST_WINRM_URL ? undefined : 'set OPSC_TEST_WINRM_URL (and _USER, _PASSWORD) to run against a real Windows host'

describe('WinRM against a real Windows host', { skip }, () => {
  let tc: TestContext
  let target: TargetRow

  before(async () => {
    tc = await createTestContext()
    const url = new URL(env.OPSC_TEST_WINRM_URL!)
    const https = url.protocol === 'https:'
    const cred = await createCredential(tc.ctx, undefined, {
      type: 'winrm',
      name: 'real-windows',
      username: env.OPSC_TEST_WINRM_USER ?? 'Administrator',
      password: env.OPSC_TEST_WINRM_PASSWORD ?? '',
      ...(env.OPSC_TEST_WINRM_DOMAIN ? { domain: env.OPSC_TEST_WINRM_DOMAIN } : {}),
      auth: env.OPSC_TEST_WINRM_AUTH === 'basic' ? 'basic' : 'ntlm',
      transport: https ? 'https' : 'http',
    })
    const dto = await createTarget(tc.ctx, {
      name: 'real-windows',
      address: url.hostname,
      os_type: 'windows',
      enabled: true,
      tags: {},
      connection: {
        type: 'winrm',
        https,
        port: Number(url.port || (https ? 5986 : 5985)),
        credential_id: cred.id,
        verify_tls: env.OPSC_TEST_WINRM_INSECURE !== '1',
        ...(env.OPSC_TEST_WINRM_CA ? { tls_ca: readFileSync(env.OPSC_TEST_WINRM_CA, 'utf8') } : {}),
      },
    })
    target = await getTargetRow(tc.ctx.db, dto.id)
  })
  after(async () => {
    await closeWinrmPools()
    await tc?.close()
  })

  const x = () => executionContext(tc.ctx, { target, timeoutMs: 120_000 })

  test('facts come from CIM', async () => {
    const { facts } = await probeWinrm(target, { ctx: tc.ctx, log: tc.ctx.log, credential: (ref) => x().credential(ref) })
    assert.match(String(facts.os_name), /Windows/)
    assert.ok(Number(facts.cpu_count) >= 1)
    assert.ok(Number(facts.memory_bytes) > 0)
  })

  test('PowerShell: stdout, the error stream as text, the exit code', async () => {
    const run = x()
    const outcome = await runWinrmExec(target, ExecInput.parse({ command: 'Write-Output "hello $($PSVersionTable.PSVersion.Major)"; Write-Error "oops"; exit 3', success_exit_codes: [3] }), run)
    assert.equal(outcome.status, 'succeeded', outcome.error ?? '')
    assert.equal(outcome.exitCode, 3)
    assert.match(run.stdout(), /^hello \d/)
    assert.match(run.stderr(), /oops/)
    assert.doesNotMatch(run.stderr(), /CLIXML|<Objs/)
  })

  test('a script over the command-line limit goes over stdin', async () => {
    const run = x()
    const filler = `# ${'x'.repeat(200)}\n`.repeat(100)
    const outcome = await runWinrmExec(target, ExecInput.parse({ command: `${filler}Write-Output ([string](6 * 7))` }), run)
    assert.equal(outcome.status, 'succeeded', outcome.error ?? '')
    assert.equal(run.stdout().trim(), '42')
  })

  test('winrm.copy writes the file and Get-FileHash agrees', async () => {
    const data = randomBytes(2 * 1024 * 1024)
    const dest = `C:\\Windows\\Temp\\opsc-${randomBytes(4).toString('hex')}.bin`
    const copied = await runWinrmCopy(target, CopyInput.parse({ destination: dest, content_base64: data.toString('base64') }), x())
    assert.equal(copied.status, 'succeeded', copied.error ?? '')
    const run = x()
    await runWinrmExec(target, ExecInput.parse({ command: `(Get-FileHash -Algorithm SHA256 '${dest}').Hash.ToLower(); Remove-Item '${dest}'` }), run)
    assert.equal(run.stdout().trim(), createHash('sha256').update(data).digest('hex'))
  })

  test('cancel stops a long command', async () => {
    const run = x()
    setTimeout(() => run.abort('cancelled'), 3000)
    const outcome = await runWinrmExec(target, ExecInput.parse({ command: 'Start-Sleep -Seconds 600' }), run)
    assert.equal(outcome.status, 'cancelled')
  })
})
