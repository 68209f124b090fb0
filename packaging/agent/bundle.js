// The self-contained agent: one esbuild bundle of agent/src/cli.ts, node-pty (JS + the native
// module for the target), on Linux the Node runtime and a launcher, a VERSION stamp, the licences
// of what is inside, and a SHA256SUMS manifest of every file. The .deb, the tarball and the
// Windows package are all made from this directory.
import { createHash } from 'node:crypto'
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import path from 'node:path'
import { build } from 'esbuild'

export const ROOT = path.resolve(import.meta.dirname, '../..')
const PTY_DIR = path.join(ROOT, 'node_modules/node-pty')
export const MANIFEST = 'SHA256SUMS'
const PLATFORMS = ['linux', 'win32']
const ARCHES = ['x64', 'arm64']
/** ELF e_machine values: the check that build/Release/pty.node really is for the target. */
const ELF_MACHINE = { x64: 0x3e, arm64: 0xb7 }
const MIN_NODE_MAJOR = 20

export class BundleError extends Error {
  name = 'BundleError'
}

export function productVersion() {
  return JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version
}

/**
 * Builds `<outDir>/opsconductor-agent-<version>-<platform>-<arch>/` from scratch.
 * `files` lists every file in it (relative, `/`-separated, sorted), the manifest last.
 * Throws a BundleError naming what is missing when the target cannot be built here.
 */
export async function buildAgentBundle({ platform, arch, outDir }) {
  if (!PLATFORMS.includes(platform)) throw new BundleError(`platform must be one of ${PLATFORMS.join(', ')} (got ${platform})`)
  if (!ARCHES.includes(arch)) throw new BundleError(`arch must be one of ${ARCHES.join(', ')} (got ${arch})`)
  const version = productVersion()
  const native = nativeModule(platform, arch)
  if (platform === 'linux') checkLinuxRuntime(arch)
  const dir = path.join(path.resolve(outDir), `opsconductor-agent-${version}-${platform}-${arch}`)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })

  const { metafile } = await build({
    absWorkingDir: ROOT,
    entryPoints: ['agent/src/cli.ts'],
    outfile: path.join(dir, 'opsconductor-agent.mjs'),
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'esm',
    // node-pty loads its .node file relative to its own lib/ directory, so it stays a package.
    external: ['node-pty'],
    define: { __OPSC_VERSION__: JSON.stringify(version) },
    // Bundled CommonJS dependencies call require() for Node built-ins; ESM output has none.
    banner: { js: "import { createRequire as __opscRequire } from 'node:module';\nconst require = __opscRequire(import.meta.url);" },
    metafile: true,
    logLevel: 'warning',
  })
  copyNodePty(dir, native)
  if (platform === 'linux') addLinuxRuntime(dir)
  writeFileSync(path.join(dir, 'THIRD-PARTY-NOTICES.txt'), notices(metafile, platform))
  writeFileSync(path.join(dir, 'VERSION'), `${version}\n`)

  const files = listFiles(dir)
  const sums = files.map((f) => `${sha256(path.join(dir, f))}  ${f}\n`).join('')
  writeFileSync(path.join(dir, MANIFEST), sums)
  return { dir, version, files: [...files, MANIFEST] }
}

/** The native files of node-pty for the target, or a BundleError saying why there are none. */
function nativeModule(platform, arch) {
  if (!existsSync(path.join(PTY_DIR, 'package.json'))) throw new BundleError('node_modules/node-pty is missing: run npm ci first')
  if (platform === 'win32') {
    const from = path.join(PTY_DIR, 'prebuilds', `win32-${arch}`)
    if (!existsSync(path.join(from, 'pty.node')) || !existsSync(path.join(from, 'conpty.node'))) {
      throw new BundleError(`node-pty ships no native module for win32-${arch} (looked in ${path.relative(ROOT, from)})`)
    }
    // Debug symbols (.pdb, ~17 MB) are for debugging node-pty itself, not for running it.
    return { from, to: `prebuilds/win32-${arch}`, filter: (name) => !name.endsWith('.pdb') }
  }
  // node-pty ships no Linux prebuilds: npm ci compiles build/Release/pty.node for the build machine.
  const from = path.join(PTY_DIR, 'build/Release')
  const file = path.join(from, 'pty.node')
  if (!existsSync(file)) throw new BundleError(`node-pty's Linux module was not compiled (${path.relative(ROOT, file)} is missing): run npm ci with g++, make and python3 installed`)
  const machine = readFileSync(file).readUInt16LE(18)
  if (machine !== ELF_MACHINE[arch]) {
    const built = Object.keys(ELF_MACHINE).find((a) => ELF_MACHINE[a] === machine) ?? `ELF machine 0x${machine.toString(16)}`
    throw new BundleError(`no native node-pty module for linux-${arch}: node-pty ships no Linux prebuilds and this machine compiled it for ${built}; build the linux-${arch} package on a linux-${arch} machine`)
  }
  return { from, to: 'build/Release', filter: (name) => name === 'pty.node' || name === 'spawn-helper' }
}

/** The Linux package carries the build machine's Node: it must match the target. */
function checkLinuxRuntime(arch) {
  if (process.platform !== 'linux' || process.arch !== arch) {
    throw new BundleError(`the linux-${arch} package embeds the Node runtime that builds it; this is ${process.platform}-${process.arch}: build it on a linux-${arch} machine`)
  }
  const major = Number(process.versions.node.split('.')[0])
  if (major < MIN_NODE_MAJOR) throw new BundleError(`the agent needs Node >= ${MIN_NODE_MAJOR}; this build runs on ${process.version}`)
}

function copyNodePty(dir, native) {
  const to = path.join(dir, 'node_modules/node-pty')
  mkdirSync(to, { recursive: true })
  for (const f of ['package.json', 'LICENSE']) copyFileSync(path.join(PTY_DIR, f), path.join(to, f))
  // lib/ holds node-pty's own tests and source maps; neither is needed to run it.
  cpSync(path.join(PTY_DIR, 'lib'), path.join(to, 'lib'), {
    recursive: true,
    filter: (src) => !/\.test\.js$|\.map$/.test(src),
  })
  const target = path.join(to, native.to)
  mkdirSync(target, { recursive: true })
  for (const entry of readdirSync(native.from, { withFileTypes: true })) {
    if (!native.filter(entry.name)) continue
    const src = path.join(native.from, entry.name)
    if (entry.isDirectory()) cpSync(src, path.join(target, entry.name), { recursive: true })
    else if (entry.name.endsWith('.node') && native.to === 'build/Release') {
      // Loaded with dlopen: it needs no execute bit (Debian policy 8.1: shared libraries are 0644).
      stripInto(src, path.join(target, entry.name))
      chmodSync(path.join(target, entry.name), 0o644)
    } else copyFileSync(src, path.join(target, entry.name))
  }
}

function addLinuxRuntime(dir) {
  const node = path.join(dir, 'node')
  stripInto(process.execPath, node)
  chmodSync(node, 0o755)
  mkdirSync(path.join(dir, 'bin'))
  const launcher = path.join(dir, 'bin/opsconductor-agent')
  // A launcher rather than the bundle's shebang: `#!/usr/bin/env node` would find the
  // distribution's Node, which is too old (Debian 12: 18, Ubuntu 22.04: 12).
  writeFileSync(
    launcher,
    '#!/bin/sh\n# Runs the agent on the Node runtime shipped beside it.\nself=$(readlink -f "$0")\ndir=${self%/bin/*}\nexec "$dir/node" "$dir/opsconductor-agent.mjs" "$@"\n',
  )
  chmodSync(launcher, 0o755)
}

/** Copies an ELF file without its symbol table and debug info (Node: 99 MB → 86 MB); a plain copy when binutils is absent. */
function stripInto(src, dest) {
  try {
    execFileSync('strip', ['--strip-unneeded', '--remove-section=.comment', '--remove-section=.note', '-o', dest, src], { stdio: 'pipe' })
  } catch (err) {
    if (err.code !== 'ENOENT') throw new BundleError(`strip ${src} failed: ${String(err.stderr ?? err.message).trim()}`)
    copyFileSync(src, dest)
  }
}

/** Name, version and licence text of every package inside the bundle (and of Node, on Linux). */
function notices(metafile, platform) {
  const packages = new Map()
  for (const input of Object.keys(metafile.inputs)) {
    const m = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input)
    if (m) packages.set(m[1], true)
  }
  packages.set('node_modules/node-pty', true)
  const sections = [...packages.keys()].sort().map((dir) => {
    const pkg = JSON.parse(readFileSync(path.join(ROOT, dir, 'package.json'), 'utf8'))
    return section(`${pkg.name} ${pkg.version} (${pkg.license ?? 'see licence'})`, licenceText(path.join(ROOT, dir)))
  })
  if (platform === 'linux') {
    const nodeLicence = [path.join(path.dirname(process.execPath), '../share/doc/nodejs/LICENSE'), path.join(path.dirname(process.execPath), '../LICENSE')].find((f) => existsSync(f))
    sections.unshift(section(`Node.js ${process.version} runtime (MIT and the licences of its dependencies)`, nodeLicence ? readFileSync(nodeLicence, 'utf8') : `See https://github.com/nodejs/node/blob/${process.version}/LICENSE`))
  }
  return `OpsConductor agent: third-party software included in this package.\n\n${sections.join('\n')}`
}

function licenceText(dir) {
  const name = readdirSync(dir).find((f) => /^licen[cs]e(\.md|\.txt)?$/i.test(f))
  return name ? readFileSync(path.join(dir, name), 'utf8') : '(no licence file in the package; see its package.json)'
}

const section = (title, body) => `${'='.repeat(78)}\n${title}\n${'='.repeat(78)}\n${body.trim()}\n`

export function listFiles(dir, base = dir) {
  const out = []
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...listFiles(full, base))
    else out.push(path.relative(base, full).split(path.sep).join('/'))
  }
  return out.sort()
}

export function sha256(file) {
  return createHash('sha256').update(readFileSync(file)).digest('hex')
}
