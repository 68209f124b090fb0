import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { psScript } from '../powershell.ts'
import { planCommand } from './exec.ts'
import { parseWinrmFacts } from './facts.ts'
import { ClixmlDecoder, MAX_ENCODED_COMMAND_CHARS, psInvocation, unescapeClixml } from './powershell.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { ExecInput } from '../exec-input.ts'

const CLIXML = '#< CLIXML\r\n<Objs Version="1.1.0.1" xmlns="http://schemas.microsoft.com/powershell/2004/04"><Obj S="progress" RefId="0"><TN RefId="0"><T>System.Management.Automation.PSCustomObject</T><T>System.Object</T></TN><MS><I64 N="SourceId">1</I64><PR N="Record"><AV>Preparing modules for first use.</AV><AI>0</AI><Nil /><PI>-1</PI><PC>-1</PC><T>Completed</T><SR>-1</SR><SD> </SD></PR></MS></Obj><S S="Error">oops &lt;bad&gt; _x005F_x_x000D__x000A_</S><S S="Error">second line_x000D__x000A_</S></Objs>'

describe('PowerShell', () => {
  it('decodes CLIXML stderr to plain text, dropping progress records', () => {
    const d = new ClixmlDecoder()
    assert.equal(d.push(CLIXML) + d.end(), 'oops <bad> _x\r\nsecond line\r\n')
  })

  it('decodes CLIXML split at any byte', () => {
    for (let cut = 1; cut < CLIXML.length; cut += 7) {
      const d = new ClixmlDecoder()
      const text = d.push(Buffer.from(CLIXML.slice(0, cut))) + d.push(Buffer.from(CLIXML.slice(cut))) + d.end()
      assert.equal(text, 'oops <bad> _x\r\nsecond line\r\n', `cut at ${cut}`)
    }
  })

  it('keeps a UTF-8 character split between chunks whole', () => {
    const d = new ClixmlDecoder()
    const bytes = Buffer.from('#< CLIXML\r\n<Objs><S S="Error">größe €_x000A_</S></Objs>')
    const at = bytes.indexOf(Buffer.from('€')) + 1
    assert.equal(d.push(bytes.subarray(0, at)) + d.push(bytes.subarray(at)) + d.end(), 'größe €\n')
  })

  it('passes plain stderr through unchanged', () => {
    const d = new ClixmlDecoder()
    assert.equal(d.push('#') + d.push(' not clixml\n') + d.end(), '# not clixml\n')
    assert.equal(unescapeClixml('a_x0009_b&amp;c'), 'a\tb&c')
  })

  it('encodes short scripts on the command line and sends long ones over stdin', () => {
    const short = psInvocation('Write-Output hi', 'powershell')
    assert.equal(short.stdinScript, undefined)
    const encoded = short.commandLine.split(' ').at(-1)!
    assert.equal(Buffer.from(encoded, 'base64').toString('utf16le'), 'Write-Output hi')
    const long = psInvocation(`# ${'x'.repeat(10_000)}\nWrite-Output hi`, 'pwsh')
    assert.equal(long.commandLine, 'pwsh -NoLogo -NoProfile -NonInteractive -Command -')
    assert.ok(long.stdinScript?.endsWith('Write-Output hi\n\n'))
    assert.ok(short.commandLine.length <= MAX_ENCODED_COMMAND_CHARS)
  })

  it('puts env and cwd before the command, quoted', () => {
    assert.equal(psScript({ command: 'Get-Date', env: { A: "it's" }, cwd: 'C:\\Temp' }), "$env:A = 'it''s'\nSet-Location -LiteralPath 'C:\\Temp'\nGet-Date\nexit $LASTEXITCODE")
  })

  it('refuses what WinRM cannot do, with one line', () => {
    const target = { name: 'win1', osType: 'windows' } as TargetRow
    const plan = (v: Record<string, unknown>) => planCommand(target, ExecInput.parse({ command: 'x', ...v }))
    assert.match((plan({ shell: 'bash' }) as { error: string }).error, /shell bash is not available over WinRM/)
    assert.match((plan({ run_as: 'bob' }) as { error: string }).error, /run_as/)
    assert.match((plan({ shell: 'cmd', cwd: 'C:\\' }) as { error: string }).error, /env and cwd need shell powershell/)
    assert.deepEqual(plan({ shell: 'cmd', command: 'dir /b' }), { commandLine: 'dir /b', skipCmdShell: false, stdin: [], powershell: false })
    assert.match((plan({ command: 'x'.repeat(10_000), stdin: 'data' }) as { error: string }).error, /stdin/)
  })
})

describe('WinRM facts', () => {
  it('normalises the facts script output', () => {
    const facts = parseWinrmFacts('noise\r\n{"os_name":"Microsoft Windows Server 2022 Standard","os_version":"10.0.20348","kernel":"20348","arch":"AMD64","cpu_count":4,"memory_bytes":17179332608,"disks":{"mount":"C:\\\\","size_bytes":136365211648,"free_bytes":100000},"uptime_sec":3600,"hostname":"WIN1"}\r\n')
    assert.deepEqual(facts, {
      os_name: 'Microsoft Windows Server 2022 Standard',
      os_version: '10.0.20348',
      kernel: '20348',
      arch: 'x86_64',
      cpu_count: 4,
      memory_bytes: 17179332608,
      disks: [{ mount: 'C:\\', size_bytes: 136365211648, free_bytes: 100000 }],
      uptime_sec: 3600,
      hostname: 'WIN1',
    })
  })

  it('calls output without JSON a protocol error', () => {
    assert.throws(() => parseWinrmFacts('Get-CimInstance : Access denied'), (err) => (err as { kind?: string }).kind === 'protocol')
  })
})
