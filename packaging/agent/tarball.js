// dist/opsconductor-agent-<version>-linux-<arch>.tar.gz: the bundle (agent/) with install.sh, the
// systemd unit, the settings file, the man page and a README, for hosts that do not use .debs.
import { execFileSync } from 'node:child_process'
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { BundleError, ROOT } from './bundle.js'

const HERE = path.join(ROOT, 'packaging/agent')

/** Packs `bundleDir` (a linux bundle) into `<outDir>/<bundle dir name>.tar.gz`. */
export function buildTarball({ bundleDir, outDir }) {
  const name = path.basename(bundleDir)
  if (!/-linux-(x64|arm64)$/.test(name)) throw new BundleError(`${bundleDir} is not a linux agent bundle (made by buildAgentBundle)`)
  const work = mkdtempSync(path.join(tmpdir(), 'opsc-tar-'))
  try {
    const top = path.join(work, name)
    cpSync(bundleDir, path.join(top, 'agent'), { recursive: true })
    const copy = (from, to, mode = 0o644) => {
      copyFileSync(path.join(HERE, from), path.join(top, to))
      chmodSync(path.join(top, to), mode)
    }
    copy('install.sh', 'install.sh', 0o755)
    copy('opsconductor-agent.service', 'opsconductor-agent.service')
    copy('default', 'opsconductor-agent.default')
    copy('opsconductor-agent.1', 'opsconductor-agent.1')
    copy('README.host', 'README')
    mkdirSync(outDir, { recursive: true })
    const file = path.join(path.resolve(outDir), `${name}.tar.gz`)
    // GNU tar: sorted, root-owned entries, so the same bundle packs the same way.
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', '-czf', file, '-C', work, name], { stdio: 'pipe' })
    return { file }
  } finally {
    rmSync(work, { recursive: true, force: true })
  }
}
