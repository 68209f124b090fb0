// The Linux agent package: build time, sizes (.deb, tarball, unpacked, what takes the room) and
// cold start of the bundled agent from process start to `agent.session_ready`, next to the same
// agent run from the TypeScript sources. Nothing is installed system-wide: the bundle runs in place.
// `npm run bench -- agent-package [--record] [--runs N]`
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { loadavg, tmpdir } from 'node:os'
import path from 'node:path'
import { buildAgentBundle, listFiles } from '../../packaging/agent/bundle.js'
import { buildDeb } from '../../packaging/agent/deb.js'
import { buildTarball } from '../../packaging/agent/tarball.js'
import { AGENT_BIN, TestController } from '../harness/agents.ts'
import { REPO_ROOT } from '../harness/controller-process.ts'
import { JsonLogWatcher } from '../harness/log-watch.ts'
import { median, record, table } from './report.ts'

const MiB = 2 ** 20
const mib = (bytes: number) => (bytes / MiB).toFixed(1)
const size = (file: string) => statSync(file).size

function osName(): string {
  const release = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))
  return release?.[1] ?? 'Linux'
}

/** Spawns the agent, times process start → session_ready, reads its RSS once ready, stops it with SIGTERM. */
async function coldStart(command: string[], stateDir: string): Promise<{ readyMs: number; rssMiB: number; stopMs: number }> {
  const t0 = performance.now()
  const proc = spawn(command[0]!, [...command.slice(1), 'run', '--state-dir', stateDir], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'pipe'] })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', resolve))
  const log = new JsonLogWatcher(proc.stderr!, 'agent', exited)
  await log.waitFor('agent.session_ready', {}, 60_000)
  const readyMs = performance.now() - t0
  const rssKiB = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${proc.pid}/status`, 'utf8'))?.[1] ?? 0)
  const t1 = performance.now()
  proc.kill('SIGTERM')
  const code = await exited
  if (code !== 0) throw new Error(`the agent exited ${code} on SIGTERM`)
  return { readyMs, rssMiB: rssKiB / 1024, stopMs: performance.now() - t1 }
}

async function enroll(command: string[], controller: TestController, stateDir: string): Promise<void> {
  const token = await controller.enrollmentToken()
  const args = ['enroll', '--controller', controller.grpcAddress, '--token', token, '--ca-fingerprint', controller.running.caFingerprint, '--state-dir', stateDir]
  const code = await new Promise<number | null>((resolve) => spawn(command[0]!, [...command.slice(1), ...args], { stdio: 'ignore' }).once('exit', resolve))
  if (code !== 0) throw new Error(`enroll failed (${code})`)
}

export async function agentPackageBench(args: string[]): Promise<void> {
  if (process.platform !== 'linux') {
    console.log('# the Linux agent package is built on Linux; skipped')
    return
  }
  const runs = Number(args[args.indexOf('--runs') + 1]) || 5
  // Other work on the machine stretches build times and start-ups: say so with the figures.
  const load = loadavg()[0]!.toFixed(1)
  const work = mkdtempSync(path.join(tmpdir(), 'opsc-bench-pkg-'))
  const controller = await TestController.start()
  try {
    const arch = process.arch === 'arm64' ? 'arm64' : 'x64'
    let t = performance.now()
    const bundle = await buildAgentBundle({ platform: 'linux', arch, outDir: work })
    const bundleS = (performance.now() - t) / 1000
    t = performance.now()
    const { file: deb } = buildDeb({ bundleDir: bundle.dir, outDir: work })
    const debS = (performance.now() - t) / 1000
    t = performance.now()
    const { file: tarball } = buildTarball({ bundleDir: bundle.dir, outDir: work })
    const tarS = (performance.now() - t) / 1000
    const files = listFiles(bundle.dir)
    const unpacked = files.reduce((sum, f) => sum + size(path.join(bundle.dir, f)), 0)
    const part = (pred: (f: string) => boolean) => files.filter(pred).reduce((sum, f) => sum + size(path.join(bundle.dir, f)), 0)
    const sizes = table(
      ['artefact', 'MiB', 'build s'],
      [
        ['.deb (xz)', mib(size(deb)), debS.toFixed(1)],
        ['.tar.gz', mib(size(tarball)), tarS.toFixed(1)],
        [`unpacked (${files.length} files)`, mib(unpacked), bundleS.toFixed(1)],
        ['… Node runtime (stripped)', mib(part((f) => f === 'node')), ''],
        ['… agent bundle (opsconductor-agent.mjs)', mib(part((f) => f.endsWith('.mjs'))), ''],
        ['… node-pty (JS + pty.node)', mib(part((f) => f.startsWith('node_modules/'))), ''],
        ['… licences, manifest, launcher', mib(part((f) => !/^(node|node_modules\/.*|.*\.mjs)$/.test(f))), ''],
      ],
    )
    console.log(sizes)

    const variants: [string, string[]][] = [
      ['packaged (bundle on its own Node)', [path.join(bundle.dir, 'node'), path.join(bundle.dir, 'opsconductor-agent.mjs')]],
      ['sources (tsx, for comparison)', [process.execPath, AGENT_BIN]],
    ]
    const rows: (string | number)[][] = []
    for (const [name, command] of variants) {
      const stateDir = path.join(work, `state-${rows.length}`)
      await enroll(command, controller, stateDir)
      const samples = []
      for (let i = 0; i < runs; i++) samples.push(await coldStart(command, stateDir))
      const ready = samples.map((s) => s.readyMs)
      rows.push([name, median(ready).toFixed(0), Math.max(...ready).toFixed(0), median(samples.map((s) => s.rssMiB)).toFixed(0), median(samples.map((s) => s.stopMs)).toFixed(0)])
    }
    const starts = table(['agent', `start → session_ready, median ms (${runs} runs)`, 'max ms', 'RSS at ready, MiB', 'SIGTERM → exit 0, ms'], rows)
    console.log(starts)
    if (args.includes('--record')) {
      record(
        'Agent package (Linux): size and cold start',
        `${sizes}\n\n${starts}`,
        `${osName()}. Sizes from \`packaging/agent\` (the code \`npm run package:agent\` runs). Cold start: a new agent process on an enrolled state dir until its \`agent.session_ready\` log line, against a local controller (in-process, idle, Postgres); page cache warm. Load average at the start: ${load} (other work on the machine).`,
      )
    }
  } finally {
    await controller.stop()
    rmSync(work, { recursive: true, force: true })
  }
}
