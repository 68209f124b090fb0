// The Debian package, built from a linux bundle with dpkg-deb (no debhelper, no network):
// /usr/lib/opsconductor-agent (the bundle), /usr/bin/opsconductor-agent, the systemd unit,
// /etc/default/opsconductor-agent, docs, man page and maintainer scripts from packaging/agent/.
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { chmodSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { gzipSync } from 'node:zlib'
import { BundleError, listFiles, ROOT } from './bundle.js'

export const PACKAGE = 'opsconductor-agent'
const HERE = path.join(ROOT, 'packaging/agent')
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64' }
const MAINTAINER = process.env.OPSC_DEB_MAINTAINER ?? 'OpsConductor maintainers <maintainers@opsconductor.example>'
const HOMEPAGE = 'https://github.com/opsconductor/opsconductor'
/** What dpkg-shlibdeps says for node + pty.node built on Debian 12; used where dpkg-dev is absent. */
const FALLBACK_DEPENDS = 'libc6 (>= 2.34), libgcc-s1 (>= 3.4), libstdc++6 (>= 6)'

/** `<outDir>/opsconductor-agent_<version>_<arch>.deb` from `bundleDir` (a linux bundle). */
export function buildDeb({ bundleDir, outDir }) {
  const arch = bundleArch(bundleDir)
  const version = readFileSync(path.join(bundleDir, 'VERSION'), 'utf8').trim()
  const work = mkdtempSync(path.join(tmpdir(), 'opsc-deb-'))
  try {
    const root = path.join(work, 'root')
    stageFiles(root, bundleDir, version)
    const control = path.join(root, 'DEBIAN')
    mkdirSync(control, { recursive: true })
    for (const script of ['postinst', 'prerm', 'postrm']) install(path.join(HERE, 'debian', script), path.join(control, script), 0o755)
    writeFileSync(path.join(control, 'conffiles'), '/etc/default/opsconductor-agent\n')
    writeFileSync(path.join(control, 'md5sums'), md5sums(root))
    writeFileSync(path.join(control, 'control'), controlFile({ version, arch, depends: depends(root, work), installedKiB: installedSize(root) }))
    normaliseModes(root)
    mkdirSync(outDir, { recursive: true })
    const file = path.join(path.resolve(outDir), `${PACKAGE}_${version}_${arch}.deb`)
    // -Zxz -z6: the default; Node is most of the size and xz roughly halves it.
    execFileSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', root, file], { stdio: 'pipe', env: { ...process.env, SOURCE_DATE_EPOCH: sourceDate() } })
    return { file, version }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}

function bundleArch(bundleDir) {
  const m = /-linux-(x64|arm64)$/.exec(path.basename(bundleDir))
  if (!m) throw new BundleError(`${bundleDir} is not a linux agent bundle (made by buildAgentBundle)`)
  return DEB_ARCH[m[1]]
}

function stageFiles(root, bundleDir, version) {
  const lib = path.join(root, 'usr/lib', PACKAGE)
  cpSync(bundleDir, lib, { recursive: true })
  mkdirSync(path.join(root, 'usr/bin'), { recursive: true })
  // Relative: /usr/bin and /usr/lib share the top-level directory (Debian policy 10.5).
  symlinkSync(`../lib/${PACKAGE}/bin/${PACKAGE}`, path.join(root, 'usr/bin', PACKAGE))
  install(path.join(HERE, `${PACKAGE}.service`), path.join(root, 'lib/systemd/system', `${PACKAGE}.service`))
  install(path.join(HERE, 'default'), path.join(root, 'etc/default', PACKAGE))
  const doc = path.join(root, 'usr/share/doc', PACKAGE)
  install(path.join(HERE, 'README.host'), path.join(doc, 'README.Debian'))
  writeFileSync(path.join(doc, 'copyright'), copyright())
  // changelog.gz, not changelog.Debian.gz: a version without a Debian revision (0.1.0, as in
  // package.json) makes this a native package, for which lintian asks for that name.
  writeFileSync(path.join(doc, 'changelog.gz'), gzipSync(changelog(version), { level: 9 }))
  const man = path.join(root, 'usr/share/man/man1')
  mkdirSync(man, { recursive: true })
  writeFileSync(path.join(man, `${PACKAGE}.1.gz`), gzipSync(readFileSync(path.join(HERE, `${PACKAGE}.1`)), { level: 9 }))
  install(path.join(HERE, 'debian/lintian-overrides'), path.join(root, 'usr/share/lintian/overrides', PACKAGE))
}

function install(from, to, mode = 0o644) {
  mkdirSync(path.dirname(to), { recursive: true })
  writeFileSync(to, readFileSync(from))
  chmodSync(to, mode)
}

/** Directories 0755; files 0755 when executable in the bundle (node, launcher, pty.node), else 0644. */
function normaliseModes(dir) {
  chmodSync(dir, 0o755)
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isSymbolicLink()) continue
    if (entry.isDirectory()) normaliseModes(full)
    else chmodSync(full, statSync(full).mode & 0o100 ? 0o755 : 0o644)
  }
}

function md5sums(root) {
  return listFiles(root)
    .filter((f) => !f.startsWith('DEBIAN/') && !lstatSync(path.join(root, f)).isSymbolicLink() && !f.startsWith('etc/'))
    .map((f) => `${createHash('md5').update(readFileSync(path.join(root, f))).digest('hex')}  ${f}\n`)
    .join('')
}

function installedSize(root) {
  let bytes = 0
  for (const f of listFiles(root)) if (!f.startsWith('DEBIAN/')) bytes += Math.ceil(lstatSync(path.join(root, f)).size / 1024) * 1024
  return Math.ceil(bytes / 1024)
}

/** Shared-library dependencies of the ELF files, from dpkg-shlibdeps when dpkg-dev is installed. */
function depends(root, work) {
  const elves = listFiles(root).filter((f) => f.endsWith('/node') || f.endsWith('.node')).map((f) => path.join(root, f))
  const src = path.join(work, 'src')
  mkdirSync(path.join(src, 'debian'), { recursive: true })
  writeFileSync(path.join(src, 'debian/control'), `Source: ${PACKAGE}\n\nPackage: ${PACKAGE}\nArchitecture: any\n`)
  try {
    const out = execFileSync('dpkg-shlibdeps', ['-O', ...elves], { cwd: src, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
    return /shlibs:Depends=(.*)/.exec(out)?.[1]?.trim() || FALLBACK_DEPENDS
  } catch (err) {
    if (err.code === 'ENOENT') return FALLBACK_DEPENDS
    throw new BundleError(`dpkg-shlibdeps failed: ${String(err.stderr ?? err.message).trim()}`)
  }
}

function controlFile({ version, arch, depends, installedKiB }) {
  return `Package: ${PACKAGE}
Version: ${version}
Architecture: ${arch}
Maintainer: ${MAINTAINER}
Installed-Size: ${installedKiB}
Depends: ${depends}
Section: admin
Priority: optional
Homepage: ${HOMEPAGE}
Description: OpsConductor agent: runs operational work sent by a controller
 The agent dials out to an OpsConductor controller over gRPC/TLS (no inbound
 port is opened), runs the signed step assignments it receives - commands,
 scripts, file transfers - and streams their output back. Like sshd, it is a
 root service that runs administrators' commands.
 .
 The package carries its own Node.js runtime (in /usr/lib/opsconductor-agent),
 as the agent needs Node.js 20 or later.
`
}

function copyright() {
  const year = new Date(Number(sourceDate()) * 1000).getUTCFullYear()
  return `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: OpsConductor
Source: ${HOMEPAGE}
Comment: /usr/lib/opsconductor-agent bundles third-party software: the Node.js
 runtime and the npm packages the agent uses. Each one's name, version, licence
 and notice is in /usr/lib/opsconductor-agent/THIRD-PARTY-NOTICES.txt.

Files: *
Copyright: ${year} OpsConductor contributors
License: Apache-2.0

License: Apache-2.0
 Licensed under the Apache License, Version 2.0 (the "License"); you may not
 use this file except in compliance with the License.
 .
 On Debian systems, the full text of the Apache License, Version 2.0 can be
 found in /usr/share/common-licenses/Apache-2.0.
`
}

function changelog(version) {
  const date = new Date(Number(sourceDate()) * 1000).toUTCString().replace('GMT', '+0000')
  return `${PACKAGE} (${version}) unstable; urgency=medium

  * OpsConductor ${version}; see the project's release notes.

 -- ${MAINTAINER}  ${date}
`
}

/** The last commit's time: the same source gives the same timestamps inside the package. */
function sourceDate() {
  if (process.env.SOURCE_DATE_EPOCH) return process.env.SOURCE_DATE_EPOCH
  try {
    return execFileSync('git', ['log', '-1', '--format=%ct'], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim()
  } catch {
    return String(Math.floor(Date.now() / 1000))
  }
}
