import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { randomBytes, randomInt } from 'node:crypto'
import { statSync } from 'node:fs'
import { AGENT_BIN } from './agents.ts'
import { REPO_ROOT } from './controller-process.ts'
import { JsonLogWatcher, type LogRecord } from './log-watch.ts'

/**
 * A throw-away Linux network namespace joined to the host by one veth pair on a private /30,
 * for tests that must run a process "somewhere else" on the network (the outbound-only agent).
 *
 * Safety: the only addresses ever configured are the two ends of a random 10.200-254.x.y/30 that
 * no host address or route touches; the namespace gets no default route (it can reach the host end
 * of the veth and nothing else), and its firewall (when applied) also drops any output that is not
 * for that one host address. Everything is named `opsc-<random>` / `oc<random>` and removed by
 * destroy() (and, best effort, when the test process exits).
 */

const SIGNALS: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP']
const SBIN_PATH = ['/usr/local/sbin', '/usr/sbin', '/sbin']
/** PATH for `ip` / `nft` / `ss` (root's tools live in sbin, which a non-login PATH may lack). */
export const TOOL_ENV = { ...process.env, PATH: [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), ...SBIN_PATH])].join(':') }

export const FIREWALL_TABLE = 'opsc_netns_test'
/** The named counter of inbound packets to the probe port (they fall through to the chain's drop policy). */
export const PROBE_COUNTER = 'inbound_probe'
/** The named counter of packets admitted only because they belong to a connection the namespace opened. */
export const ESTABLISHED_COUNTER = 'inbound_established'

interface RunResult {
  code: number | null
  stdout: string
  stderr: string
}

/** Runs a command to completion (no shell); never throws for a non-zero exit. */
export function run(command: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const proc = spawn(command, args, { env: opts.env ?? TOOL_ENV, stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    proc.stdout!.on('data', (d) => (stdout += d))
    proc.stderr!.on('data', (d) => (stderr += d))
    const timer = setTimeout(() => proc.kill('SIGKILL'), opts.timeoutMs ?? 30_000)
    proc.on('error', (err) => {
      clearTimeout(timer)
      resolve({ code: null, stdout, stderr: stderr + err.message })
    })
    proc.on('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
    proc.stdin!.on('error', () => {})
    proc.stdin!.end(opts.input ?? '')
  })
}

async function must(command: string, args: string[], opts: { input?: string } = {}): Promise<string> {
  const res = await run(command, args, opts)
  if (res.code !== 0) throw new Error(`${command} ${args.join(' ')} failed (exit ${res.code}): ${res.stderr.trim()}`)
  return res.stdout
}

/**
 * Why namespace tests cannot run here, or undefined when they can: only missing privileges,
 * missing tools or a kernel that refuses `ip netns add` count.
 */
export async function netnsUnavailable(): Promise<string | undefined> {
  if (process.platform !== 'linux') return `network namespaces need Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'network namespaces need root (run as uid 0)'
  const ip = await run('ip', ['-V'])
  if (ip.code !== 0) return `iproute2 (\`ip\`) is not installed: ${ip.stderr.trim()}`
  const nft = await run('nft', ['--version'])
  if (nft.code !== 0) return `nftables (\`nft\`) is not installed: ${nft.stderr.trim()}`
  const probe = `opsc-probe-${randomBytes(4).toString('hex')}`
  const add = await run('ip', ['netns', 'add', probe])
  if (add.code !== 0) return `the kernel or privileges refuse \`ip netns add\`: ${add.stderr.trim()}`
  await run('ip', ['netns', 'delete', probe])
  return undefined
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => n * 256 + Number(part), 0)
}
function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.')
}
function inPrefix(ip: number, prefix: string): boolean {
  const [base, bits] = prefix.split('/')
  const len = bits === undefined ? 32 : Number(bits)
  const size = 2 ** (32 - len)
  const start = Math.floor(ipToInt(base!) / size) * size
  return ip >= start && ip < start + size
}

/** A random 10.200-254.x.y/30 that no host address or (non-default) route overlaps. */
async function pickSubnet(): Promise<{ network: number; host: string; peer: string }> {
  const routes = (await must('ip', ['-4', '-o', 'route', 'show', 'table', 'all']))
    .split('\n')
    .map((l) => l.trim().split(/\s+/))
    .map((words) => (['unicast', 'local', 'broadcast', 'blackhole', 'unreachable', 'prohibit', 'throw', 'multicast'].includes(words[0]!) ? words[1] : words[0]))
    .filter((dest): dest is string => !!dest && dest !== 'default' && /^\d+\.\d+\.\d+\.\d+(\/\d+)?$/.test(dest))
  const addresses = [...(await must('ip', ['-4', '-o', 'addr', 'show'])).matchAll(/inet (\d+\.\d+\.\d+\.\d+\/\d+)/g)].map((m) => m[1]!)
  const taken = [...routes, ...addresses]
  for (let attempt = 0; attempt < 100; attempt++) {
    const network = ipToInt(`10.${randomInt(200, 255)}.${randomInt(0, 256)}.0`) + randomInt(0, 64) * 4
    // Overlap either way: one of our four addresses inside a host prefix, or a host prefix inside ours.
    const clash = taken.some((p) => [0, 1, 2, 3].some((i) => inPrefix(network + i, p)) || inPrefix(ipToInt(p.split('/')[0]!), `${intToIp(network)}/30`))
    if (!clash) return { network, host: intToIp(network + 1), peer: intToIp(network + 2) }
  }
  throw new Error('no free private /30 found for the test namespace')
}

/** A long-running process inside the namespace (`ip netns exec` execs it, so the pid is the process's own). */
export class NamespacedProcess {
  readonly exited: Promise<number | null>
  constructor(readonly proc: ChildProcess) {
    this.exited = new Promise((resolve) => {
      if (proc.exitCode !== null || proc.signalCode !== null) resolve(proc.exitCode)
      else proc.once('exit', (code) => resolve(code))
    })
  }

  get pid(): number {
    return this.proc.pid!
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(signal)
    return this.exited
  }
}

/** A real `opsconductor-agent run` inside the namespace; its JSON log lines are kept (as AgentProcess does). */
export class NamespacedAgent extends NamespacedProcess {
  private readonly watcher: JsonLogWatcher

  constructor(proc: ChildProcess) {
    super(proc)
    this.watcher = new JsonLogWatcher(proc.stderr!, `netns agent ${proc.pid}`, this.exited)
  }

  get logs(): LogRecord[] {
    return this.watcher.logs
  }

  waitFor(msg: string, timeoutMs = 60_000): Promise<LogRecord> {
    return this.watcher.waitFor(msg, {}, timeoutMs)
  }
}

export class NetNamespace {
  private readonly children = new Set<NamespacedProcess>()
  private destroyed = false
  private readonly onExit = () => this.destroySync()
  /** Ctrl-C or a runner's SIGTERM would end the process without 'exit': clean up, then die of the signal as before. */
  private readonly onSignal = (signal: NodeJS.Signals) => {
    this.destroySync()
    process.kill(process.pid, signal)
  }

  private constructor(
    /** `ip netns` name. */
    readonly name: string,
    /** The veth end on the host (the namespace's only reachable address). */
    readonly hostIf: string,
    readonly hostAddress: string,
    readonly nsIf: string,
    readonly nsAddress: string,
  ) {}

  /** A fresh namespace with lo up and a veth pair to the host; no firewall yet (see applyFirewall). */
  static async create(): Promise<NetNamespace> {
    const id = randomBytes(4).toString('hex')
    const subnet = await pickSubnet()
    const ns = new NetNamespace(`opsc-${id}`, `oc${id}h`, subnet.host, `oc${id}n`, subnet.peer)
    process.once('exit', ns.onExit)
    for (const signal of SIGNALS) process.once(signal, ns.onSignal)
    try {
      await must('ip', ['netns', 'add', ns.name])
      await must('ip', ['link', 'add', ns.hostIf, 'type', 'veth', 'peer', 'name', ns.nsIf, 'netns', ns.name])
      await must('ip', ['addr', 'add', `${ns.hostAddress}/30`, 'dev', ns.hostIf])
      await must('ip', ['link', 'set', ns.hostIf, 'up'])
      await must('ip', ['-n', ns.name, 'link', 'set', 'lo', 'up'])
      await must('ip', ['-n', ns.name, 'addr', 'add', `${ns.nsAddress}/30`, 'dev', ns.nsIf])
      await must('ip', ['-n', ns.name, 'link', 'set', ns.nsIf, 'up'])
      // The namespace has no default route: the connected /30 is all it can reach.
      const routes = (await must('ip', ['-n', ns.name, '-4', 'route', 'show', 'table', 'all'])).split('\n').filter((l) => l && !/^(local|broadcast) /.test(l))
      if (routes.length !== 1 || !routes[0]!.startsWith(`${intToIp(subnet.network)}/30 dev ${ns.nsIf}`)) throw new Error(`unexpected routes in ${ns.name}: ${routes.join('; ')}`)
    } catch (err) {
      await ns.destroy()
      throw err
    }
    return ns
  }

  /**
   * Loads the namespace's firewall: inbound policy drop, except loopback and packets of connections
   * the namespace itself opened (established/related); outbound only to the host veth address.
   * The probe port's inbound packets are counted before they hit the drop policy.
   */
  async applyFirewall(probePort: number): Promise<string> {
    const ruleset = `
table inet ${FIREWALL_TABLE} {
  counter ${PROBE_COUNTER} {}
  counter ${ESTABLISHED_COUNTER} {}
  chain input {
    type filter hook input priority filter; policy drop;
    ct state established,related counter name ${ESTABLISHED_COUNTER} accept
    iifname "lo" accept
    tcp dport ${probePort} counter name ${PROBE_COUNTER}
  }
  chain output {
    type filter hook output priority filter; policy drop;
    oifname "lo" accept
    ip daddr ${this.hostAddress} accept
  }
}
`
    await must('ip', ['netns', 'exec', this.name, 'nft', '-f', '-'], { input: ruleset })
    return must('ip', ['netns', 'exec', this.name, 'nft', 'list', 'ruleset'])
  }

  /** Packets counted by one of the firewall's named counters. */
  async counter(name: string): Promise<number> {
    const out = await must('ip', ['netns', 'exec', this.name, 'nft', 'list', 'counter', 'inet', FIREWALL_TABLE, name])
    const m = /packets (\d+)/.exec(out)
    if (!m) throw new Error(`no packet count in: ${out}`)
    return Number(m[1])
  }

  /** The `net:[inode]` link that /proc/<pid>/ns/net shows for processes inside this namespace. */
  get netnsLink(): string {
    return `net:[${statSync(`/run/netns/${this.name}`).ino}]`
  }

  /** Runs a command inside the namespace to completion. */
  exec(command: string, args: string[], opts: { input?: string; timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    return run('ip', ['netns', 'exec', this.name, command, ...args], { env: TOOL_ENV, ...opts })
  }

  /** Node inside the namespace, from the repository root (so tsx and the sources resolve). */
  node(args: string[], opts: { timeoutMs?: number; env?: NodeJS.ProcessEnv } = {}): Promise<RunResult> {
    return this.exec(process.execPath, args, opts)
  }

  /** Starts a long-running process inside the namespace; destroy() kills it if it is still running. */
  spawn(command: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
    if (this.destroyed) throw new Error(`${this.name} is gone`)
    const proc = spawn('ip', ['netns', 'exec', this.name, command, ...args], { cwd: REPO_ROOT, env: TOOL_ENV, ...opts })
    this.children.add(new NamespacedProcess(proc))
    return proc
  }

  /** A real `opsconductor-agent run` inside the namespace. */
  startAgent(stateDir: string, args: string[] = []): NamespacedAgent {
    const proc = this.spawn(process.execPath, [AGENT_BIN, 'run', '--state-dir', stateDir, '--reconnect-max-ms', '500', ...args], { stdio: ['ignore', 'ignore', 'pipe'] })
    return new NamespacedAgent(proc)
  }

  /** `opsconductor-agent <args>` inside the namespace, to completion. */
  agentCli(args: string[]): Promise<RunResult> {
    return this.node([AGENT_BIN, ...args], { timeoutMs: 60_000 })
  }

  /** Pids of every process whose network namespace is this one. */
  async pids(): Promise<number[]> {
    const res = await run('ip', ['netns', 'pids', this.name])
    return res.stdout.split(/\s+/).filter(Boolean).map(Number)
  }

  /** Kills what runs inside, removes the veth pair and the namespace. Safe to call twice, never throws. */
  async destroy(): Promise<void> {
    if (this.destroyed) return
    this.destroyed = true
    process.removeListener('exit', this.onExit)
    for (const signal of SIGNALS) process.removeListener(signal, this.onSignal)
    await Promise.all([...this.children].map((c) => c.kill('SIGKILL')))
    // Anything left in the namespace was started by this test (children of the processes above).
    for (const pid of await this.pids().catch(() => [])) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {}
    }
    await run('ip', ['link', 'delete', this.hostIf])
    await run('ip', ['netns', 'delete', this.name])
  }

  /** Last resort when the test process exits without after() having run. */
  private destroySync(): void {
    if (this.destroyed) return
    this.destroyed = true
    process.removeListener('exit', this.onExit)
    for (const signal of SIGNALS) process.removeListener(signal, this.onSignal)
    for (const c of this.children) c.proc.pid && c.proc.exitCode === null && tryKill(c.proc.pid)
    try {
      for (const pid of execFileSync('ip', ['netns', 'pids', this.name], { env: TOOL_ENV, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split(/\s+/).filter(Boolean)) tryKill(Number(pid))
    } catch {}
    for (const args of [['link', 'delete', this.hostIf], ['netns', 'delete', this.name]]) {
      try {
        execFileSync('ip', args, { env: TOOL_ENV, stdio: 'ignore' })
      } catch {}
    }
  }
}

function tryKill(pid: number): void {
  try {
    process.kill(pid, 'SIGKILL')
  } catch {}
}
