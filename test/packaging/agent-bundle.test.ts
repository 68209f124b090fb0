// The self-contained agent bundle (packaging/agent/bundle.js), built into temp dirs: complete,
// verified by its own manifest, and runnable outside the repository (no node_modules around it).
import assert from 'node:assert/strict'
import { existsSync, readFileSync, statSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { buildAgentBundle, BundleError, MANIFEST, productVersion, sha256 } from '../../packaging/agent/bundle.js'
import { removeTempDirs, SERVICE_ENV, sh, tempDir } from './helpers.ts'

const hostArch = process.arch === 'arm64' ? 'arm64' : 'x64'
const otherArch = hostArch === 'x64' ? 'arm64' : 'x64'
const onLinux = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64')

/** Every file listed once in SHA256SUMS, every listed hash right, nothing unlisted but the manifest. */
function verifyManifest(dir: string, files: string[]): void {
  const lines = readFileSync(path.join(dir, MANIFEST), 'utf8').trim().split('\n')
  const listed = new Map(lines.map((l) => {
    const m = /^([0-9a-f]{64}) {2}(.+)$/.exec(l)
    assert.ok(m, `manifest line in sha256sum format: ${l}`)
    return [m[2]!, m[1]!] as const
  }))
  assert.equal(listed.size, lines.length, 'no file listed twice')
  assert.deepEqual([...listed.keys()].sort(), files.filter((f) => f !== MANIFEST).sort())
  for (const [file, hash] of listed) assert.equal(sha256(path.join(dir, file)), hash, `hash of ${file}`)
}

let linux: { dir: string; version: string; files: string[] } | undefined
before(async () => {
  if (onLinux) linux = await buildAgentBundle({ platform: 'linux', arch: hostArch, outDir: tempDir('bundle') })
})
after(removeTempDirs)

test('the Linux bundle holds the agent, node-pty with its compiled module, the Node runtime, a launcher, licences and a version stamp', { skip: !onLinux && 'Linux bundles are built on linux-x64/arm64' }, () => {
  const { dir, version, files } = linux!
  assert.equal(version, productVersion())
  assert.equal(path.basename(dir), `opsconductor-agent-${version}-linux-${hostArch}`)
  for (const f of ['opsconductor-agent.mjs', 'node', 'bin/opsconductor-agent', 'node_modules/node-pty/package.json', 'node_modules/node-pty/lib/index.js', 'node_modules/node-pty/build/Release/pty.node', 'THIRD-PARTY-NOTICES.txt', 'VERSION', MANIFEST]) {
    assert.ok(files.includes(f), `${f} is in the bundle`)
  }
  assert.equal(readFileSync(path.join(dir, 'VERSION'), 'utf8'), `${version}\n`)
  assert.ok(!files.some((f) => f.endsWith('.test.js') || f.endsWith('.map') || f.includes('/src/')), 'no tests, maps or sources of node-pty')
  assert.equal(statSync(path.join(dir, 'node')).mode & 0o777, 0o755)
  assert.equal(statSync(path.join(dir, 'bin/opsconductor-agent')).mode & 0o777, 0o755)
  // Every package esbuild pulled in is named with its licence.
  const notices = readFileSync(path.join(dir, 'THIRD-PARTY-NOTICES.txt'), 'utf8')
  for (const pkg of ['Node.js', '@grpc/grpc-js', 'pino', 'zod', 'node-pty', 'tweetnacl']) assert.match(notices, new RegExp(`^${pkg.replace('.', '\\.')} `, 'm'))
})

test('SHA256SUMS lists every file of the bundle with its hash', { skip: !onLinux && 'no Linux bundle here' }, () => {
  verifyManifest(linux!.dir, linux!.files)
  // The same check an operator runs by hand.
  const check = sh('sha256sum', ['--check', '--strict', '--quiet', MANIFEST], { cwd: linux!.dir })
  assert.equal(check.code, 0, check.stdout + check.stderr)
})

test('the bundle runs on its own Node with no node_modules around it; the bundled node-pty spawns a terminal', { skip: !onLinux && 'no Linux bundle here' }, () => {
  const { dir, version } = linux!
  assert.ok(!existsSync(path.join(path.dirname(dir), 'node_modules')))
  const v = sh(path.join(dir, 'bin/opsconductor-agent'), ['--version'], { env: SERVICE_ENV })
  assert.equal(v.code, 0, v.stderr)
  assert.match(v.stdout, new RegExp(`^${version.replaceAll('.', '\\.')} \\(protocol \\d+\\.\\d+\\)`))
  const script = `import { spawn } from 'node-pty'
const p = spawn('/bin/sh', ['-c', 'tty'], {})
let out = ''
p.onData((d) => (out += d))
p.onExit(({ exitCode }) => { console.log(JSON.stringify({ out, exitCode, node: process.version })) })`
  // Resolved from the bundle dir as the agent's own import is: <dir>/node_modules/node-pty.
  const r = sh(path.join(dir, 'node'), ['--input-type=module', '-e', script], { cwd: dir, env: SERVICE_ENV })
  assert.equal(r.code, 0, r.stderr)
  const res = JSON.parse(r.stdout) as { out: string; exitCode: number; node: string }
  assert.match(res.out, /\/dev\/pts\/\d+/)
  assert.equal(res.exitCode, 0)
  assert.equal(res.node, process.version, 'the runtime is the build machine\'s Node')
})

test('the win32-x64 bundle carries node-pty\'s prebuilt Windows modules (ConPTY included) without debug symbols', async () => {
  const { dir, files } = await buildAgentBundle({ platform: 'win32', arch: 'x64', outDir: tempDir('bundle-win') })
  assert.equal(path.basename(dir), `opsconductor-agent-${productVersion()}-win32-x64`)
  for (const f of ['pty.node', 'conpty.node', 'conpty_console_list.node', 'conpty/conpty.dll', 'conpty/OpenConsole.exe']) {
    assert.ok(files.includes(`node_modules/node-pty/prebuilds/win32-x64/${f}`), `${f} is in the bundle`)
  }
  assert.ok(!files.some((f) => f.endsWith('.pdb')), 'no .pdb files')
  assert.ok(!files.includes('node') && !files.includes('bin/opsconductor-agent'), 'the Windows package brings its own node.exe')
  assert.ok(!files.some((f) => f.includes('build/Release')), 'no Linux module')
  verifyManifest(dir, files)
})

test('a target without a native node-pty module is refused, saying why', async () => {
  if (process.platform === 'linux') {
    await assert.rejects(buildAgentBundle({ platform: 'linux', arch: otherArch, outDir: tempDir('bundle-x') }), (err: Error) => {
      assert.ok(err instanceof BundleError)
      assert.match(err.message, new RegExp(`linux-${otherArch}`))
      assert.match(err.message, /native node-pty module/)
      return true
    })
  }
  await assert.rejects(buildAgentBundle({ platform: 'darwin' as 'linux', arch: 'x64', outDir: tempDir('bundle-x') }), /platform must be one of linux, win32/)
  await assert.rejects(buildAgentBundle({ platform: 'linux', arch: 'ia32' as 'x64', outDir: tempDir('bundle-x') }), /arch must be one of x64, arm64/)
})
