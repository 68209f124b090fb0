import { WinrmError } from './errors.ts'
import { runPooled, type WinrmCommand } from './exec.ts'
import type { HostPool } from './pool.ts'
import { encodedCommandLine } from '../powershell.ts'

/*
 * Host facts of a Windows host for a connection test: one PowerShell/CIM script prints them as
 * JSON. Its first line names it for the test peer, which runs test/peers/winrm/twins/facts.sh.
 */

export const FACTS_SCRIPT = [
  '# opsc:facts/1',
  "$ErrorActionPreference = 'Stop'",
  '$os = Get-CimInstance Win32_OperatingSystem',
  '$cs = Get-CimInstance Win32_ComputerSystem',
  "$disks = @(Get-CimInstance Win32_LogicalDisk -Filter 'DriveType=3' | ForEach-Object { [ordered]@{ mount = $_.DeviceID + '\\'; size_bytes = [int64]$_.Size; free_bytes = [int64]$_.FreeSpace } })",
  '$facts = [ordered]@{',
  '  os_name = [string]$os.Caption.Trim()',
  '  os_version = [string]$os.Version',
  '  kernel = [string]$os.BuildNumber',
  '  arch = [string]$env:PROCESSOR_ARCHITECTURE',
  '  cpu_count = [int]$cs.NumberOfLogicalProcessors',
  '  memory_bytes = [int64]$cs.TotalPhysicalMemory',
  '  disks = $disks',
  '  uptime_sec = [int64]((Get-Date) - $os.LastBootUpTime).TotalSeconds',
  '  hostname = [string]$env:COMPUTERNAME',
  '}',
  '[Console]::Out.WriteLine((ConvertTo-Json -InputObject $facts -Compress -Depth 4))',
  'exit 0',
  '',
].join('\n')

const ARCH: Record<string, string> = { AMD64: 'x86_64', X86: 'x86', ARM64: 'aarch64', IA64: 'ia64' }

const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : undefined)

/** The facts script's output, normalised (Windows architecture names as uname spells them). */
export function parseWinrmFacts(stdout: string): Record<string, unknown> {
  const start = stdout.indexOf('{')
  const end = stdout.lastIndexOf('}')
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(stdout.slice(start, end + 1)) as Record<string, unknown>
    if (start < 0 || typeof raw !== 'object' || raw === null) throw new Error('not an object')
  } catch (err) {
    throw new WinrmError('protocol', `the facts script printed no JSON: ${stdout.trim().slice(0, 200) || 'no output'}`, { cause: err })
  }
  const disks = (Array.isArray(raw.disks) ? raw.disks : raw.disks ? [raw.disks] : [])
    .map((d) => d as Record<string, unknown>)
    .map((d) => ({ mount: String(d.mount ?? ''), size_bytes: num(d.size_bytes) ?? 0, free_bytes: num(d.free_bytes) ?? 0 }))
    .filter((d) => d.mount)
  const arch = typeof raw.arch === 'string' ? (ARCH[raw.arch.toUpperCase()] ?? raw.arch) : undefined
  const facts: Record<string, unknown> = {
    os_name: raw.os_name,
    os_version: raw.os_version,
    kernel: raw.kernel === undefined ? undefined : String(raw.kernel),
    arch,
    cpu_count: num(raw.cpu_count),
    memory_bytes: num(raw.memory_bytes),
    disks,
    uptime_sec: num(raw.uptime_sec),
    hostname: raw.hostname,
  }
  return Object.fromEntries(Object.entries(facts).filter(([, v]) => v !== undefined && v !== null && v !== ''))
}

export async function collectWinrmFacts(pool: HostPool, signal: AbortSignal): Promise<Record<string, unknown>> {
  const cmd: WinrmCommand = { commandLine: encodedCommandLine(FACTS_SCRIPT), skipCmdShell: true, stdin: [], powershell: true }
  const out = { stdout: '', stderr: '' }
  const r = await runPooled(pool, cmd, (s, d) => (out[s] += typeof d === 'string' ? d : d.toString('utf8')), signal)
  if (r.exitCode !== 0) throw new WinrmError('protocol', `the facts script failed (exit code ${r.exitCode}): ${out.stderr.trim().split('\n', 1)[0] || 'no message'}`)
  return parseWinrmFacts(out.stdout)
}
