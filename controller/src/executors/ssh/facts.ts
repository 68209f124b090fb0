import { capture } from './channel.ts'
import type { SshConnection } from './connect.ts'
import { SshError } from './errors.ts'

/*
 * Host facts over SSH for a connection test: one command (one round trip) prints each source
 * under a marker line, and the sections are parsed here. Anything a host lacks is left out.
 */

const FACTS_TIMEOUT_MS = 20_000

const SCRIPT = [
  'export LC_ALL=C',
  'echo @@uname; uname -s; uname -r; uname -m',
  'echo @@os-release; cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null',
  'echo @@hostname; hostname 2>/dev/null || uname -n',
  'echo @@nproc; nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null',
  'echo @@meminfo; cat /proc/meminfo 2>/dev/null',
  'echo @@df; df -P -B1 -l -x tmpfs -x devtmpfs -x squashfs 2>/dev/null',
  'echo @@uptime; cat /proc/uptime 2>/dev/null',
  'exit 0',
].join('\n')

export interface Disk {
  mount: string
  size_bytes: number
  free_bytes: number
}

function sections(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>()
  let current: string[] | undefined
  for (const line of text.split('\n')) {
    const m = /^@@([a-z-]+)$/.exec(line)
    if (m) out.set(m[1]!, (current = []))
    else current?.push(line)
  }
  return out
}

function osRelease(lines: string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const line of lines) {
    const m = /^([A-Z_]+)=(.*)$/.exec(line.trim())
    if (m) out[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1')
  }
  return out
}

function disks(lines: string[]): Disk[] {
  const seen = new Set<string>()
  const out: Disk[] = []
  for (const line of lines.slice(1)) {
    // Filesystem 1-blocks Used Available Capacity Mounted-on (the mount point may contain spaces)
    const f = line.trim().split(/\s+/)
    if (f.length < 6) continue
    const mount = f.slice(5).join(' ')
    const size = Number(f[1])
    const free = Number(f[3])
    if (!Number.isFinite(size) || !Number.isFinite(free) || seen.has(mount)) continue
    seen.add(mount)
    out.push({ mount, size_bytes: size, free_bytes: free })
  }
  return out
}

const int = (s: string | undefined) => {
  const n = Number.parseInt(s ?? '', 10)
  return Number.isFinite(n) ? n : undefined
}

/** Parses the facts command's output (exported for tests). */
export function parseFacts(stdout: string): Record<string, unknown> {
  const s = sections(stdout)
  const [kernelName, kernel, arch] = (s.get('uname') ?? []).map((l) => l.trim())
  const os = osRelease(s.get('os-release') ?? [])
  const memKb = /^MemTotal:\s+(\d+)\s*kB/m.exec((s.get('meminfo') ?? []).join('\n'))?.[1]
  const uptime = Number.parseFloat((s.get('uptime') ?? [])[0] ?? '')
  const facts: Record<string, unknown> = {
    os_name: os.NAME ?? kernelName,
    os_version: os.VERSION_ID ?? os.VERSION,
    os_pretty_name: os.PRETTY_NAME,
    kernel,
    kernel_name: kernelName,
    arch,
    cpu_count: int((s.get('nproc') ?? [])[0]),
    memory_bytes: memKb ? Number(memKb) * 1024 : undefined,
    disks: disks(s.get('df') ?? []),
    uptime_sec: Number.isFinite(uptime) ? Math.floor(uptime) : undefined,
    hostname: (s.get('hostname') ?? [])[0]?.trim() || undefined,
  }
  return Object.fromEntries(Object.entries(facts).filter(([, v]) => v !== undefined && v !== ''))
}

/** OS, kernel, CPU, memory, disks, uptime and host name of a (Linux) host, from one command. */
export async function collectSshFacts(conn: SshConnection): Promise<Record<string, unknown>> {
  const res = await capture(conn.client, `exec /bin/sh -c '${SCRIPT.replace(/'/g, `'\\''`)}'`, FACTS_TIMEOUT_MS)
  if (res.code === null && res.stdout === '') throw new SshError('lost', `${conn.label} did not answer the facts command`)
  return parseFacts(res.stdout)
}
