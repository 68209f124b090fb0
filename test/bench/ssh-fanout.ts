// Agentless fan-out: `uname -a` on N aliases of one loopback sshd through our SSH executor, side
// by side with Ansible ad-hoc and parallel-ssh at the same width.
// `npm run bench -- ssh-fanout [--record] [--sizes 50,200,500] [--width 50] [--idle-ms 30000] [--ours-only]`
import { spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createCredential } from '../../controller/src/credentials/service.ts'
import { ExecInput } from '../../controller/src/executors/exec-input.ts'
import { closeSshPool, runSshExec, sshPoolStats } from '../../controller/src/executors/ssh/index.ts'
import { executionContext } from '../../controller/src/executors/testing.ts'
import { createTarget, getTargetRow } from '../../controller/src/targets/service.ts'
import type { TargetRow } from '../../controller/src/targets/targets.sql.ts'
import { createTestContext, type TestContext } from '../harness/context.ts'
import { startSshd, type TestSshd } from '../harness/sshd.ts'
import { measureCpu } from './agents/cpu.ts'
import { record, table } from './report.ts'

const UNAME = ExecInput.parse({ command: 'uname -a' })
/** A job's default fan-out (jobs/definition.ts: max_parallel 100). */
const DEFAULT_WIDTH = 100

interface Measure {
  wallS: number
  /** CPU seconds of the tool (with its children), or of the controller process. */
  cpuS: number
  /** Postgres CPU seconds (ours only: the trust store, credentials). */
  dbCpuS?: number
  ok: number
}

function option(args: string[], name: string, fallback: string): string {
  const i = args.indexOf(name)
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback
}

/** Runs `fn` over `items` with at most `width` at once, as the engine's fan-out does. */
async function fanOut<T>(items: T[], width: number, fn: (item: T) => Promise<boolean>): Promise<number> {
  let next = 0
  let ok = 0
  const lane = async () => {
    while (next < items.length) {
      const item = items[next++]!
      if (await fn(item)) ok++
    }
  }
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, lane))
  return ok
}

async function ours(tc: TestContext, targets: TargetRow[], width: number): Promise<Measure> {
  const t0 = performance.now()
  const { result: ok, cpu } = await measureCpu([], () =>
    fanOut(targets, width, async (target) => {
      const x = executionContext(tc.ctx, { target, output: { write: () => {} } })
      return (await runSshExec(target, UNAME, x)).status === 'succeeded'
    }),
  )
  return { wallS: (performance.now() - t0) / 1000, cpuS: cpu.controller, dbCpuS: cpu.postgres, ok }
}

/** Runs a peer under /usr/bin/time: wall, user and system seconds of it and every child it waited for. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv, countOk: (stdout: string) => number): Promise<Measure> {
  return new Promise((resolve, reject) => {
    const p = spawn('/usr/bin/time', ['-f', 'TIME %e %U %S', cmd, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    p.stdout.on('data', (d) => (out += d))
    p.stderr.on('data', (d) => (err += d))
    p.on('error', reject)
    p.on('close', () => {
      const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+)\s*$/.exec(err)
      if (!m) return reject(new Error(`${cmd}: no timing (${err.slice(-500)})`))
      resolve({ wallS: Number(m[1]), cpuS: Number(m[2]) + Number(m[3]), ok: countOk(out) })
    })
  })
}

function ansible(dir: string, sshd: TestSshd, keyFile: string, n: number, width: number): Promise<Measure> {
  const inventory = path.join(dir, `inventory-${n}`)
  const line = (i: number) => `h${i} ansible_host=127.0.0.1 ansible_port=${sshd.port} ansible_user=${sshd.user} ansible_ssh_private_key_file=${keyFile}`
  writeFileSync(inventory, `[all]\n${Array.from({ length: n }, (_, i) => line(i)).join('\n')}\n`)
  const cfg = path.join(dir, 'ansible.cfg')
  // One connection per alias, like ours: no ControlMaster multiplexing.
  writeFileSync(cfg, ['[defaults]', 'host_key_checking = False', 'interpreter_python = auto_silent', 'gathering = explicit', '[ssh_connection]', 'ssh_args = -o ControlMaster=no -o ControlPersist=no -o UserKnownHostsFile=/dev/null', ''].join('\n'))
  return timed('ansible', ['all', '-i', inventory, '-m', 'command', '-a', 'uname -a', '-f', String(width)], { ANSIBLE_CONFIG: cfg, ANSIBLE_LOCAL_TEMP: path.join(dir, 'ansible-tmp') }, (out) => (out.match(/\| CHANGED \| rc=0/g) ?? []).length)
}

function pssh(dir: string, sshd: TestSshd, keyFile: string, n: number, width: number): Promise<Measure> {
  const hosts = path.join(dir, `hosts-${n}`)
  writeFileSync(hosts, `${Array.from({ length: n }, () => `${sshd.user}@127.0.0.1:${sshd.port}`).join('\n')}\n`)
  const sshArgs = `-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o ControlMaster=no -o LogLevel=ERROR -i ${keyFile}`
  return timed('parallel-ssh', ['-h', hosts, '-p', String(width), '-t', '0', '-x', sshArgs, 'uname -a'], {}, (out) => (out.match(/\[SUCCESS\]/g) ?? []).length)
}

async function aliases(tc: TestContext, sshd: TestSshd, credentialId: string, n: number, tag: string): Promise<TargetRow[]> {
  const out: TargetRow[] = []
  for (let i = 0; i < n; i++) {
    const dto = await createTarget(tc.ctx, {
      name: `fanout-${tag}-${i}`,
      address: sshd.host,
      os_type: 'linux',
      enabled: true,
      tags: {},
      connection: { type: 'ssh', port: sshd.port, credential_id: credentialId, host_key_policy: 'tofu', jump: [] },
    })
    out.push(await getTargetRow(tc.ctx.db, dto.id))
  }
  return out
}

const f1 = (s: number) => s.toFixed(2)
const sshdVersion = () => /OpenSSH_[\w.]+/.exec(spawnSync('/usr/sbin/sshd', ['-V'], { encoding: 'utf8' }).stderr)?.[0] ?? 'OpenSSH'

export async function sshFanoutBench(args: string[]): Promise<void> {
  const sizes = option(args, '--sizes', '50,200,500').split(',').map(Number)
  const width = Number(option(args, '--width', '50'))
  // Interrupted, the process still exits normally, so the harness removes its sshd and user.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130))
  const dir = mkdtempSync(path.join(os.tmpdir(), 'opsc-fanout-'))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  const sshd = await startSshd({ maxStartups: '1000:30:1000', maxSessions: 10 })
  const peers = !args.includes('--ours-only')
  const tc = await createTestContext({ env: { OPSC_SSH_IDLE_MS: option(args, '--idle-ms', '30000') } })
  try {
    const keyFile = path.join(dir, 'id_ed25519')
    writeFileSync(keyFile, sshd.keys.ed25519.privateKey, { mode: 0o600 })
    const cred = await createCredential(tc.ctx, undefined, { type: 'ssh_key', name: 'fanout-ed25519', username: sshd.user, private_key: sshd.keys.ed25519.privateKey })
    const rows: (string | number)[][] = []
    for (const n of sizes) {
      const run = async (label: string, m: Measure, note = '') => {
        rows.push([n, label, f1(m.wallS), f1(m.cpuS), m.dbCpuS === undefined ? '–' : f1(m.dbCpuS), `${m.ok}/${n}`, note])
        console.log(`N=${n} ${label}: ${f1(m.wallS)} s wall, ${f1(m.cpuS)} s CPU${m.dbCpuS === undefined ? '' : ` (+${f1(m.dbCpuS)} s Postgres)`}, ${m.ok}/${n} ok`)
      }
      // Fresh targets (first contact: tofu records each host key) and an empty pool: every alias is a new connection.
      closeSshPool(tc.ctx)
      const coldTargets = await aliases(tc, sshd, cred.id, n, `${n}-w${width}`)
      await run(`OpsConductor, ${width} wide`, await ours(tc, coldTargets, width), 'new connection per alias')
      const warm = await ours(tc, coldTargets, width)
      await run(`OpsConductor, ${width} wide, again`, warm, 'pooled connections reused')
      closeSshPool(tc.ctx)
      const wide = await aliases(tc, sshd, cred.id, n, `${n}-w${DEFAULT_WIDTH}`)
      await run(`OpsConductor, ${DEFAULT_WIDTH} wide (job default)`, await ours(tc, wide, DEFAULT_WIDTH), `handshake peak ${sshPoolStats(tc.ctx).handshakes.peak}`)
      closeSshPool(tc.ctx)
      if (!peers) continue
      await run(`ansible -f ${width}`, await ansible(dir, sshd, keyFile, n, width), 'ControlMaster off')
      await run(`parallel-ssh -p ${width}`, await pssh(dir, sshd, keyFile, n, width))
    }
    const body = table(['N', 'tool', 'wall s', 'CPU s (tool/controller)', 'Postgres CPU s', 'ok', 'note'], rows)
    console.log(`\n${body}`)
    if (args.includes('--record')) {
      record(
        'SSH fan-out: uname -a on N aliases of one sshd',
        body,
        `\`npm run bench -- ssh-fanout --record\`. One ${sshdVersion()} sshd on 127.0.0.1 (MaxStartups 1000:30:1000, MaxSessions 10), an Ed25519 user key, N targets/inventory lines that all point at it, so every alias is its own connection and handshake for every tool. OpsConductor: runSshExec called as the engine does, through the connection pool (default settings: 64 handshakes at once), host keys trust-on-first-use (one trust-store query and insert per alias); CPU = the controller process (process.cpuUsage), Postgres separately. Peers under \`/usr/bin/time\` (CPU = user + system of the tool and every process it waited for: ansible's forks and their ssh clients, pssh's ssh clients). sshd's own CPU is not counted for anyone.`,
      )
    }
  } finally {
    closeSshPool(tc.ctx)
    await tc.close()
    await sshd.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}
