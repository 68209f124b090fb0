// The Linux tarball and its install.sh, installed into a staging root (DESTDIR): the live system
// is left alone, so this can run beside deb.test.ts.
import assert from 'node:assert/strict'
import { appendFileSync, existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { buildAgentBundle } from '../../packaging/agent/bundle.js'
import { buildTarball } from '../../packaging/agent/tarball.js'
import { has, removeTempDirs, SERVICE_ENV, sh, tempDir } from './helpers.ts'

const skip = process.platform !== 'linux' ? 'Linux packages are built on Linux' : !has('tar') ? 'tar is not installed' : false
const arch = process.arch === 'arm64' ? 'arm64' : 'x64'

let tarball = ''
let version = ''
let unpacked = ''
before(async () => {
  if (skip) return
  const bundle = await buildAgentBundle({ platform: 'linux', arch, outDir: tempDir('tar-bundle') })
  version = bundle.version
  tarball = buildTarball({ bundleDir: bundle.dir, outDir: tempDir('tar-out') }).file
  unpacked = tempDir('tar-x')
  const x = sh('tar', ['-xzf', tarball, '-C', unpacked])
  assert.equal(x.code, 0, x.stderr)
})
after(removeTempDirs)

const top = () => path.join(unpacked, `opsconductor-agent-${version}-linux-${arch}`)
const install = (root: string, ...args: string[]) => sh(path.join(top(), 'install.sh'), args, { env: { ...SERVICE_ENV, DESTDIR: root } })

/** Every file and symlink under `root`, relative. */
function leftovers(root: string): string[] {
  const out: string[] = []
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, e.name)
      if (e.isDirectory()) walk(full)
      else out.push(path.relative(root, full))
    }
  }
  walk(root)
  return out
}

test('the tarball is named for the version and platform, root-owned, with install.sh executable and the bundle under agent/', { skip }, () => {
  assert.equal(path.basename(tarball), `opsconductor-agent-${version}-linux-${arch}.tar.gz`)
  const list = sh('tar', ['-tvzf', tarball]).stdout.trim().split('\n')
  const prefix = `opsconductor-agent-${version}-linux-${arch}/`
  for (const line of list) {
    assert.match(line, / 0\/0 /, `root-owned: ${line}`)
    assert.ok(line.includes(` ${prefix}`), `under ${prefix}: ${line}`)
  }
  const entry = (name: string) => list.find((l) => l.endsWith(` ${prefix}${name}`))
  assert.match(entry('install.sh') ?? '', /^-rwxr-xr-x /)
  for (const f of ['opsconductor-agent.service', 'opsconductor-agent.default', 'opsconductor-agent.1', 'README', 'agent/SHA256SUMS', 'agent/node', 'agent/opsconductor-agent.mjs']) {
    assert.ok(entry(f), `${f} is in the tarball`)
  }
})

test('install.sh installs into a staging root, the command runs from there, and --uninstall --purge leaves nothing', { skip }, () => {
  const root = tempDir('tar-root')
  const res = install(root)
  assert.equal(res.code, 0, res.stderr)
  assert.match(res.stdout, new RegExp(`opsconductor-agent ${version.replaceAll('.', '\\.')} installed`))
  assert.match(res.stdout, /Next: sudo opsconductor-agent enroll/)

  const lib = path.join(root, 'usr/lib/opsconductor-agent')
  assert.equal(readlinkSync(path.join(root, 'usr/bin/opsconductor-agent')), '../lib/opsconductor-agent/bin/opsconductor-agent')
  assert.equal(statSync(path.join(lib, 'node')).mode & 0o777, 0o755)
  assert.equal(statSync(path.join(lib, 'opsconductor-agent.mjs')).mode & 0o777, 0o644)
  assert.equal(statSync(path.join(root, 'var/lib/opsconductor-agent')).mode & 0o777, 0o700)
  const unit = readFileSync(path.join(root, 'etc/systemd/system/opsconductor-agent.service'), 'utf8')
  assert.equal(unit, readFileSync(path.join(top(), 'opsconductor-agent.service'), 'utf8'), 'the same unit as the .deb')
  assert.ok(existsSync(path.join(root, 'etc/default/opsconductor-agent')))
  assert.ok(existsSync(path.join(root, 'usr/share/man/man1/opsconductor-agent.1')))
  const v = sh(path.join(root, 'usr/bin/opsconductor-agent'), ['--version'], { env: SERVICE_ENV })
  assert.equal(v.code, 0, v.stderr)
  assert.ok(v.stdout.startsWith(`${version} `))
  const check = sh('sha256sum', ['--check', '--strict', '--quiet', 'SHA256SUMS'], { cwd: lib })
  assert.equal(check.code, 0, check.stdout)

  // An operator's settings survive an upgrade; the enrollment survives uninstall without --purge.
  appendFileSync(path.join(root, 'etc/default/opsconductor-agent'), 'OPSC_AGENT_LOG_LEVEL=debug\n')
  writeFileSync(path.join(root, 'var/lib/opsconductor-agent/agent.json'), '{}\n', { mode: 0o600 })
  const again = install(root)
  assert.equal(again.code, 0, again.stderr)
  assert.doesNotMatch(again.stdout, /Next: sudo opsconductor-agent enroll/, 'an enrolled host is not told to enrol')
  assert.match(readFileSync(path.join(root, 'etc/default/opsconductor-agent'), 'utf8'), /^OPSC_AGENT_LOG_LEVEL=debug$/m)
  assert.ok(!existsSync(`${lib}.new`) && !existsSync(`${lib}.old`), 'no half-swapped copies left')

  const removed = install(root, '--uninstall')
  assert.equal(removed.code, 0, removed.stderr)
  assert.deepEqual(leftovers(root).sort(), ['etc/default/opsconductor-agent', 'var/lib/opsconductor-agent/agent.json'])
  const purged = install(root, '--uninstall', '--purge')
  assert.equal(purged.code, 0, purged.stderr)
  assert.deepEqual(leftovers(root), [])
  assert.ok(!existsSync(path.join(root, 'var/lib/opsconductor-agent')))
})

test('install.sh refuses a damaged tarball and unknown options', { skip }, () => {
  const copy = tempDir('tar-bad')
  assert.equal(sh('tar', ['-xzf', tarball, '-C', copy]).code, 0)
  const dir = path.join(copy, path.basename(top()))
  writeFileSync(path.join(dir, 'agent/VERSION'), '9.9.9\n')
  const root = tempDir('tar-root-bad')
  const res = sh(path.join(dir, 'install.sh'), [], { env: { ...SERVICE_ENV, DESTDIR: root } })
  assert.notEqual(res.code, 0)
  assert.match(res.stderr, /do not match agent\/SHA256SUMS/)
  assert.ok(!existsSync(path.join(root, 'usr')), 'nothing was installed')
  const bad = install(root, '--frobnicate')
  assert.notEqual(bad.code, 0)
  assert.match(bad.stderr, /unknown option --frobnicate/)
  assert.match(install(root, '--purge').stderr, /--purge goes with --uninstall/)
})
