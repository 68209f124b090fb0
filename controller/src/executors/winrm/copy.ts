import { createHash } from 'node:crypto'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { copyContent, type CopyInput } from '../exec-input.ts'
import { abortOutcome, oneLine, stepSignal } from '../outcome.ts'
import type { ExecutionContext, StepOutcome } from '../types.ts'
import { targetLabel, transportOptionsFor } from './connect.ts'
import { WinrmError } from './errors.ts'
import { runPooled, type WinrmCommand } from './exec.ts'
import { hostPool } from './pool.ts'
import { encodedCommandLine } from '../powershell.ts'

/*
 * `winrm.copy`: a small PowerShell receiver, its parameters written into the script, reads the
 * file as base64 lines from stdin into a temp file beside the destination, checks its SHA-256 and
 * moves it into place, then prints the hash it computed, which must match ours. The receiver's
 * first line names it for the test peer, which runs test/peers/winrm/twins/copy-receiver.sh
 * (keep the two in step: parameters, messages, exit codes, output).
 */

export const RECEIVER = 'copy-receiver/1'
/** Raw bytes per base64 line (a multiple of 3, so lines decode on their own). */
const LINE_BYTES = 48 * 1024
const OK = /^OPSC-COPY-OK sha256=([0-9a-f]{64}) bytes=(\d+)\s*$/m

export function receiverScript(p: { destination: string; sha256: string; overwrite: boolean; createParents: boolean }): string {
  const b = (v: boolean) => (v ? '$true' : '$false')
  return [
    `# opsc:${RECEIVER}`,
    `$Dest = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('${Buffer.from(p.destination, 'utf8').toString('base64')}'))`,
    `$Sha256 = '${p.sha256}'`,
    `$Overwrite = ${b(p.overwrite)}`,
    `$CreateParents = ${b(p.createParents)}`,
    `$ErrorActionPreference = 'Stop'`,
    `$tmp = $null`,
    `function Fail($code, $msg) { if ($tmp -and (Test-Path -LiteralPath $tmp)) { Remove-Item -LiteralPath $tmp -Force }; [Console]::Error.WriteLine($msg); exit $code }`,
    `trap { Fail 1 $_.Exception.Message }`,
    `$Dest = [IO.Path]::GetFullPath($Dest)`,
    `$dir = [IO.Path]::GetDirectoryName($Dest)`,
    `if (-not [IO.Directory]::Exists($dir)) { if ($CreateParents) { [void][IO.Directory]::CreateDirectory($dir) } else { Fail 2 "directory $dir does not exist" } }`,
    `if ([IO.Directory]::Exists($Dest)) { Fail 3 "$Dest is a directory" }`,
    `if (-not $Overwrite -and [IO.File]::Exists($Dest)) { Fail 3 "$Dest exists and overwrite is false" }`,
    `$tmp = [IO.Path]::Combine($dir, '.opsc-' + [Guid]::NewGuid().ToString('N') + '.tmp')`,
    `$out = [IO.File]::Open($tmp, 'CreateNew', 'Write')`,
    `$sha = [Security.Cryptography.SHA256]::Create()`,
    `$n = 0`,
    `try { foreach ($line in $input) { if ($line.Length -gt 0) { $bytes = [Convert]::FromBase64String($line); $out.Write($bytes, 0, $bytes.Length); [void]$sha.TransformBlock($bytes, 0, $bytes.Length, $null, 0); $n += $bytes.Length } } } finally { $out.Close() }`,
    `[void]$sha.TransformFinalBlock((New-Object byte[] 0), 0, 0)`,
    `$got = -join ($sha.Hash | ForEach-Object { $_.ToString('x2') })`,
    `if ($got -ne $Sha256) { Fail 4 "checksum mismatch: received $n bytes with sha256 $got, expected $Sha256" }`,
    `if ([IO.File]::Exists($Dest)) { [IO.File]::Replace($tmp, $Dest, $null) } else { [IO.File]::Move($tmp, $Dest) }`,
    `$tmp = $null`,
    `[Console]::Out.WriteLine("OPSC-COPY-OK sha256=$got bytes=$n")`,
    `exit 0`,
    `# opsc:end`,
    '',
  ].join('\n')
}

/** The file as base64 lines, produced lazily. */
function* base64Lines(data: Buffer): Generator<Buffer> {
  for (let off = 0; off < data.length; off += LINE_BYTES) yield Buffer.from(`${data.subarray(off, off + LINE_BYTES).toString('base64')}\n`, 'latin1')
}

export function copyCommand(input: CopyInput, exe: 'powershell' | 'pwsh', data: Buffer, sha256: string): WinrmCommand {
  const script = receiverScript({ destination: input.destination, sha256, overwrite: input.overwrite, createParents: input.create_parents })
  // Always -EncodedCommand (stdin carries the data); without cmd.exe a command line may reach 32767 characters.
  return { commandLine: encodedCommandLine(script, exe), skipCmdShell: true, stdin: [...base64Lines(data)], powershell: true }
}

export async function runWinrmCopy(target: TargetRow, input: CopyInput, x: ExecutionContext): Promise<StepOutcome> {
  const data = copyContent(input)
  const sha256 = createHash('sha256').update(data).digest('hex')
  const cmd = copyCommand(input, 'powershell', data, sha256)
  if (cmd.commandLine.length > 32_000) return { status: 'failed', error: 'the destination path is too long' }
  const signal = stepSignal(x)
  if (signal.aborted) return abortOutcome(x)
  const out = { stdout: '', stderr: '' }
  try {
    const pool = hostPool(await transportOptionsFor(target, { ctx: x.ctx, log: x.log, credential: x.credential, signal }))
    const r = await runPooled(pool, cmd, (s, d) => (out[s] += typeof d === 'string' ? d : d.toString('utf8')), signal)
    const label = targetLabel(target)
    if (r.exitCode !== 0) return { status: 'failed', exitCode: r.exitCode, error: `copy to ${input.destination} on ${label} failed: ${oneLine(out.stderr.trim() || `exit code ${r.exitCode}`)}` }
    const m = OK.exec(out.stdout)
    if (!m) return { status: 'failed', error: `copy to ${input.destination} on ${label}: the receiver did not confirm the file (${oneLine(out.stdout.trim() || 'no output')})` }
    if (m[1] !== sha256 || Number(m[2]) !== data.length) return { status: 'failed', error: `copy to ${input.destination} on ${label}: the host reports sha256 ${m[1]} (${m[2]} bytes), expected ${sha256} (${data.length} bytes)` }
    if (out.stderr.trim()) x.output.write('stderr', out.stderr)
    return { status: 'succeeded', exitCode: 0, result: { path: input.destination, size: data.length, sha256 } }
  } catch (err) {
    if (signal.aborted) return abortOutcome(x)
    if (err instanceof WinrmError) return { status: 'failed', error: `${targetLabel(target)}: ${err.message}` }
    throw err
  }
}
