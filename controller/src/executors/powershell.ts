import type { ExecInput } from './exec-input.ts'

/*
 * PowerShell command lines, shared by the SSH transport (Windows OpenSSH) and WinRM: a script
 * travels as `-EncodedCommand` (base64 of UTF-16LE), so nothing in it needs quoting for a shell.
 */

export type PsExe = 'powershell' | 'pwsh'

export const PS_FLAGS = '-NoLogo -NoProfile -NonInteractive'

export function encodeCommand(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64')
}

/** A single-quoted PowerShell string (PowerShell also treats the typographic quotes as quotes). */
export function psQuote(s: string): string {
  return `'${s.replace(/['\u2018\u2019\u201a\u201b]/g, (q) => q + q)}'`
}

/** The script for an exec step: env and cwd first, then the command, exiting with its exit code. */
export function psScript(input: Pick<ExecInput, 'command' | 'env' | 'cwd'>): string {
  const lines = Object.entries(input.env).map(([name, value]) => `$env:${name} = ${psQuote(value)}`)
  if (input.cwd !== undefined) lines.push(`Set-Location -LiteralPath ${psQuote(input.cwd)}`)
  lines.push(input.command, 'exit $LASTEXITCODE')
  return lines.join('\n')
}

export function encodedCommandLine(script: string, exe: PsExe = 'powershell'): string {
  return `${exe} ${PS_FLAGS} -EncodedCommand ${encodeCommand(script)}`
}
