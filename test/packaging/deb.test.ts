// The .deb on this machine: contents, lintian, systemd-analyze, then dpkg -i, enrolment of the
// INSTALLED agent in its default state dir, the unit's own ExecStart against a real controller,
// a job through the API, SIGTERM, upgrade, remove and purge.
// The only test file that installs anything system-wide; its tests run in order and depend on
// each other. Needs root and dpkg; a leftover opsconductor-agent package is purged first.
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { after, before, test } from 'node:test'
import { buildAgentBundle, productVersion } from '../../packaging/agent/bundle.js'
import { buildDeb } from '../../packaging/agent/deb.js'
import { TestController, waitUntil } from '../harness/agents.ts'
import { JsonLogWatcher } from '../harness/log-watch.ts'
import { agentTargetId, RunsApi } from '../harness/runs.ts'
import { has, isRoot, removeTempDirs, run, SERVICE_ENV, sh, tempDir } from './helpers.ts'

const PKG = 'opsconductor-agent'
const dpkgKnows = () => has('dpkg-query') && sh('dpkg-query', ['-W', '-f=${Status}', PKG]).code === 0
const skip = !isRoot
  ? 'installing a .deb needs root'
  : !has('dpkg-deb') || !has('dpkg')
    ? 'dpkg is not installed'
    : process.arch !== 'x64'
      ? 'the amd64 package is built on x64'
      : existsSync(`/usr/lib/${PKG}`) && !dpkgKnows()
        ? `an ${PKG} installed from the tarball is on this machine; the test leaves it alone`
        : false

const STATE = '/var/lib/opsconductor-agent'
const UNIT = `/lib/systemd/system/${PKG}.service`
const DSH_STATE = `/var/lib/systemd/deb-systemd-helper-enabled/${PKG}.service.dsh-also`
const WANTS = `/etc/systemd/system/multi-user.target.wants/${PKG}.service`

let deb = ''
let version = ''
let controller: TestController | undefined
let agentId = ''
/** dpkg -L of the installed package, with what each path was (links followed: /lib may be one). */
let installed: { path: string; kind: 'dir' | 'file' }[] = []

const dpkg = (...args: string[]) => sh('dpkg', args, { env: { ...SERVICE_ENV, DEBIAN_FRONTEND: 'noninteractive' } })
const isInstalled = () => /install ok installed/.test(sh('dpkg-query', ['-W', '-f=${Status}', PKG]).stdout)

before(async () => {
  if (skip) return
  // Leftovers of an interrupted run: the package, or a state dir nothing uses any more.
  if (dpkgKnows()) dpkg('--purge', PKG)
  rmSync(STATE, { recursive: true, force: true })
  const bundle = await buildAgentBundle({ platform: 'linux', arch: 'x64', outDir: tempDir('deb-bundle') })
  ;({ file: deb, version } = buildDeb({ bundleDir: bundle.dir, outDir: tempDir('deb-out') }))
})
after(async () => {
  if (!skip && isInstalled()) dpkg('--purge', PKG)
  await controller?.stop()
  removeTempDirs()
})

test('the control file names the package, version, architecture, dependencies and section', { skip }, () => {
  assert.equal(path.basename(deb), `${PKG}_${version}_amd64.deb`, 'the name the agents wizard tells operators to install')
  const field = (name: string) => sh('dpkg-deb', ['-f', deb, name]).stdout.trim()
  assert.equal(field('Package'), PKG)
  assert.equal(field('Version'), productVersion(), 'the version in package.json')
  assert.equal(field('Architecture'), 'amd64')
  assert.equal(field('Section'), 'admin')
  assert.equal(field('Priority'), 'optional')
  assert.match(field('Maintainer'), /^.+ <.+@.+>$/)
  assert.match(field('Description'), /^OpsConductor agent/)
  assert.ok(Number(field('Installed-Size')) > 50_000, 'Installed-Size in KiB, Node included')
  const depends = field('Depends').split(/,\s*/).map((d) => d.split(' ')[0])
  assert.deepEqual(depends.sort(), ['libc6', 'libgcc-s1', 'libstdc++6'], 'only the C/C++ runtime: Node comes with the package')
  const info = sh('dpkg-deb', ['-I', deb]).stdout
  for (const script of ['postinst', 'prerm', 'postrm']) assert.match(info, new RegExp(`\\d+ lines\\s+\\*\\s+${script}\\s+#!/bin/sh`), `${script} is there and executable`)
  assert.match(info, /conffiles/)
  assert.match(info, /md5sums/)
})

test('the package holds the agent, its Node, the command, the unit, settings, docs and man page, root-owned with Debian modes', { skip }, () => {
  const entries = new Map<string, string>()
  for (const line of sh('dpkg-deb', ['-c', deb]).stdout.trim().split('\n')) {
    const m = /^(\S+) (\S+)\s+\d+ \S+ \S+ \.(\/\S*)(?: -> (\S+))?$/.exec(line)
    assert.ok(m, line)
    assert.equal(m[2], 'root/root', line)
    entries.set(m[3]!.replace(/\/$/, '') || '/', m[1]! + (m[4] ? ` -> ${m[4]}` : ''))
  }
  const lib = `/usr/lib/${PKG}`
  const expect: Record<string, RegExp> = {
    [`${lib}/node`]: /^-rwxr-xr-x$/,
    [`${lib}/opsconductor-agent.mjs`]: /^-rw-r--r--$/,
    [`${lib}/bin/${PKG}`]: /^-rwxr-xr-x$/,
    [`${lib}/node_modules/node-pty/build/Release/pty.node`]: /^-rw-r--r--$/,
    [`${lib}/node_modules/node-pty/lib/index.js`]: /^-rw-r--r--$/,
    [`${lib}/SHA256SUMS`]: /^-rw-r--r--$/,
    [`${lib}/VERSION`]: /^-rw-r--r--$/,
    [`/usr/bin/${PKG}`]: new RegExp(`^lrwxrwxrwx -> \\.\\./lib/${PKG}/bin/${PKG}$`),
    [UNIT]: /^-rw-r--r--$/,
    [`/etc/default/${PKG}`]: /^-rw-r--r--$/,
    [`/usr/share/doc/${PKG}/copyright`]: /^-rw-r--r--$/,
    [`/usr/share/doc/${PKG}/changelog.gz`]: /^-rw-r--r--$/,
    [`/usr/share/doc/${PKG}/README.Debian`]: /^-rw-r--r--$/,
    [`/usr/share/man/man1/${PKG}.1.gz`]: /^-rw-r--r--$/,
    [`/usr/share/lintian/overrides/${PKG}`]: /^-rw-r--r--$/,
  }
  for (const [file, mode] of Object.entries(expect)) assert.match(entries.get(file) ?? 'missing', mode, file)
  for (const [entry, mode] of entries) if (mode.startsWith('d')) assert.equal(mode, 'drwxr-xr-x', entry)
  assert.ok(![...entries.keys()].some((f) => f.startsWith('/var/')), 'the state dir is made by postinst, never shipped')
})

test('lintian finds no errors (the embedded Node is overridden with its reason)', { skip: skip || (!has('lintian') && 'lintian is not installed') }, () => {
  const res = sh('lintian', ['--pedantic', '--display-experimental', '--show-overrides', deb], { timeoutMs: 600_000 })
  const tags = res.stdout.split('\n').filter((l) => /^[EWIPXO]: /.test(l))
  assert.deepEqual(tags.filter((l) => l.startsWith('E: ')), [], res.stdout)
  assert.ok(tags.some((l) => /^O: .*embedded-library zlib/.test(l)), 'the documented override applies')
  // Warnings are not failures, but the package has none today: show any that appear.
  for (const l of tags.filter((t) => !t.startsWith('O: '))) console.log(`# lintian: ${l}`)
})

test('dpkg -i on a host that is not enrolled installs everything, creates the state dir (0700) and says how to enrol', { skip }, () => {
  const res = dpkg('-i', deb)
  assert.equal(res.code, 0, res.stdout + res.stderr)
  assert.ok(isInstalled())
  assert.match(res.stdout, /sudo opsconductor-agent enroll --controller HOST:8444 --token TOKEN --ca-fingerprint/)
  assert.match(res.stdout, /sudo systemctl enable --now opsconductor-agent/)
  assert.equal(statSync(STATE).mode & 0o777, 0o700)
  assert.ok(!existsSync(WANTS), 'not enabled before enrolment')
  installed = dpkg('-L', PKG).stdout.trim().split('\n').map((p) => ({ path: p, kind: statSync(p).isDirectory() ? 'dir' : 'file' }))
  assert.ok(installed.some((e) => e.path === `/usr/lib/${PKG}/node`))
  const v = sh(`/usr/bin/${PKG}`, ['--version'], { env: SERVICE_ENV })
  assert.equal(v.code, 0, v.stderr)
  assert.ok(v.stdout.startsWith(`${version} `))
})

test('systemd-analyze verify passes on the installed unit', { skip: skip || (!has('systemd-analyze') && 'systemd-analyze is not installed') }, () => {
  // Documentation=man:… is checked only where man is installed.
  const res = sh('systemd-analyze', ['verify', `--man=${has('man') ? 'yes' : 'no'}`, UNIT])
  const ours = `${res.stdout}${res.stderr}`.split('\n').filter((l) => l.includes(PKG))
  assert.deepEqual(ours, [], `${res.stdout}${res.stderr}`)
  assert.equal(res.code, 0)
})

test('the installed agent enrols into /var/lib/opsconductor-agent', { skip }, async () => {
  controller = await TestController.start()
  const token = await controller.enrollmentToken()
  const res = await run(`/usr/bin/${PKG}`, ['enroll', '--controller', controller.grpcAddress, '--token', token, '--ca-fingerprint', controller.running.caFingerprint], { env: SERVICE_ENV })
  assert.equal(res.code, 0, res.stderr)
  agentId = /enrolled as agent ([0-9a-f-]{36})/.exec(res.stdout)![1]!
  assert.ok(res.stdout.includes(STATE))
  for (const f of ['agent.json', 'identity.key', 'box.key', 'ca.crt']) assert.ok(existsSync(path.join(STATE, f)), f)
  assert.equal(statSync(path.join(STATE, 'identity.key')).mode & 0o777, 0o600)
})

test('reinstalling (the upgrade path) keeps the enrollment and the state dir', { skip }, () => {
  const before = readFileSync(path.join(STATE, 'agent.json'), 'utf8')
  const res = dpkg('-i', deb)
  assert.equal(res.code, 0, res.stdout + res.stderr)
  assert.doesNotMatch(res.stdout, /not enrolled yet/)
  assert.equal(readFileSync(path.join(STATE, 'agent.json'), 'utf8'), before)
  assert.equal(statSync(STATE).mode & 0o777, 0o700)
})

test("the unit's ExecStart runs the agent: it connects, runs a job's exec and pty steps, and exits 0 on SIGTERM", { skip }, async () => {
  const execStart = /^ExecStart=(.+)$/m.exec(readFileSync(UNIT, 'utf8'))![1]!
  assert.doesNotMatch(execStart, /["'$%]/, 'a plain command line, split on spaces as systemd would')
  const [file, ...args] = execStart.split(/\s+/)
  const proc = spawn(file!, args, { env: SERVICE_ENV, cwd: '/', stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  const log = new JsonLogWatcher(proc.stderr!, 'installed agent', exited)
  try {
    await log.waitFor('agent.session_ready', {}, 60_000)
    // The installed command reads the running agent's status from the default state dir.
    let status = await run(`/usr/bin/${PKG}`, ['status'], { env: SERVICE_ENV })
    await waitUntil(async () => (status = await run(`/usr/bin/${PKG}`, ['status'], { env: SERVICE_ENV })).code === 0, 30_000, 'status says connected')
    assert.match(status.stdout, new RegExp(agentId))
    const api = await RunsApi.as(controller!.ctx)
    const jobId = await api.createJob({
      name: 'installed agent',
      targets: `id:${await agentTargetId(controller!.ctx, agentId)}`,
      steps: [
        { id: 'plain', type: 'exec', shell: 'bash', command: 'echo "hello from $(id -un)"; echo "node $(readlink /proc/$PPID/exe)"' },
        { id: 'terminal', type: 'exec', command: 'tty', pty: true },
      ],
    })
    const runId = await api.run(jobId)
    const finished = await api.waitForRun(runId)
    assert.equal(finished.status, 'succeeded', JSON.stringify(finished))
    const steps = await api.steps(runId)
    assert.equal(steps.length, 2)
    const [plain, terminal] = [steps.find((s) => s.step_id === 'plain'), steps.find((s) => s.step_id === 'terminal')]
    assert.equal(plain.exit_code, 0)
    const out = await api.output(runId, plain.id)
    assert.match(out, /^hello from root$/m)
    assert.match(out, new RegExp(`^node /usr/lib/${PKG}/node$`, 'm'), 'the step ran under the packaged Node')
    assert.match(await api.output(runId, terminal.id), /\/dev\/pts\/\d+/, 'node-pty works from the package')
  } finally {
    proc.kill('SIGTERM')
  }
  assert.equal(await exited, 0, 'SIGTERM is a clean stop (exit 0)')
  assert.ok(log.logs.some((r) => r.msg === 'agent.stopped'))
})

test('dpkg -r removes the program and unit but keeps the enrollment; dpkg -P leaves nothing', { skip }, () => {
  const removed = dpkg('-r', PKG)
  assert.equal(removed.code, 0, removed.stdout + removed.stderr)
  for (const e of installed.filter((e) => e.kind === 'file' && e.path !== `/etc/default/${PKG}`)) assert.ok(!existsSync(e.path), `${e.path} removed`)
  assert.ok(!existsSync(`/usr/lib/${PKG}`))
  assert.ok(existsSync(path.join(STATE, 'agent.json')), 'the enrollment is kept')
  assert.ok(existsSync(`/etc/default/${PKG}`), 'the conffile stays until purge')

  const purged = dpkg('-P', PKG)
  assert.equal(purged.code, 0, purged.stdout + purged.stderr)
  const left = installed.filter((e) => (e.kind === 'file' || e.path.includes(PKG)) && existsSync(e.path)).map((e) => e.path)
  assert.deepEqual(left, [])
  for (const p of [STATE, DSH_STATE, WANTS]) assert.ok(!existsSync(p), `${p} is gone`)
  assert.equal(sh('dpkg-query', ['-W', PKG]).code, 1, 'dpkg no longer knows the package')
})

test('installing on a host that kept its enrollment enables the unit (without systemd running) and purge undoes it', { skip }, () => {
  // What a re-imaged host with a preserved /var/lib looks like; postinst only checks the file is there.
  mkdirSync(STATE, { recursive: true, mode: 0o700 })
  writeFileSync(path.join(STATE, 'agent.json'), `${JSON.stringify({ agent_id: agentId })}\n`, { mode: 0o600 })
  const res = dpkg('-i', deb)
  assert.equal(res.code, 0, res.stdout + res.stderr)
  assert.doesNotMatch(res.stdout, /not enrolled yet/)
  if (has('deb-systemd-helper')) {
    assert.equal(readlinkSync(WANTS), UNIT, 'enabled for the next boot')
  }
  const purged = dpkg('-P', PKG)
  assert.equal(purged.code, 0, purged.stdout + purged.stderr)
  for (const p of [STATE, DSH_STATE, WANTS, `/usr/lib/${PKG}`]) assert.ok(!existsSync(p), `${p} is gone`)
})
