#!/usr/bin/env node
// `npm run package:agent`: the agent bundles and packages under dist/.
//   linux-<this machine's arch>: .deb + .tar.gz (they embed this machine's Node and node-pty build)
//   win32-x64: bundle, then packaging/windows/build.js (buildWindowsPackage) when it exists
// Bundles are kept in dist/agent-bundles/; a target that cannot be built here is reported and skipped.
import { existsSync, statSync } from 'node:fs'
import path from 'node:path'
import { pathToFileURL } from 'node:url'
import { buildAgentBundle, BundleError, ROOT } from './bundle.js'
import { buildDeb } from './deb.js'
import { buildTarball } from './tarball.js'

const dist = path.join(ROOT, 'dist')
const bundles = path.join(dist, 'agent-bundles')
const mib = (file) => `${(statSync(file).size / 2 ** 20).toFixed(1)} MiB`
const rel = (file) => path.relative(ROOT, file)

async function bundle(platform, arch) {
  try {
    const b = await buildAgentBundle({ platform, arch, outDir: bundles })
    console.log(`bundle   ${rel(b.dir)} (${b.files.length} files)`)
    return b
  } catch (err) {
    if (!(err instanceof BundleError)) throw err
    console.log(`skipped  ${platform}-${arch}: ${err.message}`)
    return undefined
  }
}

const linuxArch = process.platform === 'linux' && (process.arch === 'x64' || process.arch === 'arm64') ? process.arch : undefined
if (!linuxArch) console.log(`skipped  linux packages: they are built on linux-x64 or linux-arm64 (this is ${process.platform}-${process.arch})`)
const linux = linuxArch ? await bundle('linux', linuxArch) : undefined
if (linux) {
  const { file: tarball } = buildTarball({ bundleDir: linux.dir, outDir: dist })
  console.log(`tarball  ${rel(tarball)} (${mib(tarball)})`)
  try {
    const { file: deb } = buildDeb({ bundleDir: linux.dir, outDir: dist })
    console.log(`deb      ${rel(deb)} (${mib(deb)})`)
  } catch (err) {
    if (err.code !== 'ENOENT') throw err
    console.log('skipped  .deb: dpkg-deb is not installed (apt-get install dpkg)')
  }
}

const windows = await bundle('win32', 'x64')
const windowsBuilder = path.join(ROOT, 'packaging/windows/build.js')
if (windows && existsSync(windowsBuilder)) {
  const { buildWindowsPackage } = await import(pathToFileURL(windowsBuilder).href)
  const result = await buildWindowsPackage({ bundleDir: windows.dir, outDir: dist })
  console.log(`windows  ${typeof result?.file === 'string' ? rel(result.file) : 'built'}`)
} else if (windows) {
  console.log('skipped  Windows package: packaging/windows/build.js is not there yet (the bundle is built)')
}
