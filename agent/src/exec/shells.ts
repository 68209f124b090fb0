import { accessSync, constants, statSync } from 'node:fs'
import path from 'node:path'
import { Shell, type ExecAction } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'

/** What to spawn: an absolute program path and its arguments, or why there is nothing to spawn. */
export type CommandLine = { file: string; args: string[]; windowsVerbatimArguments?: boolean } | { error: string }

type Env = Record<string, string | undefined>

const SHELL_NAMES: Record<Shell, string> = {
  [Shell.UNSPECIFIED]: 'default',
  [Shell.BASH]: 'bash',
  [Shell.SH]: 'sh',
  [Shell.ZSH]: 'zsh',
  [Shell.POWERSHELL]: 'powershell',
  [Shell.PWSH]: 'pwsh',
  [Shell.CMD]: 'cmd',
}

/**
 * Turns the action's command into a program and arguments. Programs are looked up on the PATH
 * the process will get (agent env + action env), so a missing shell is an outcome, not a crash.
 */
export function resolveCommand(command: ExecAction['command'], env: Env, platform = process.platform): CommandLine {
  if (command.case === 'argv') {
    const [program, ...args] = command.value.argv
    if (!program) return { error: 'argv is empty' }
    const file = findExecutable(program, env, platform)
    return file ? { file, args } : { error: `program ${program} not found or not executable` }
  }
  if (command.case !== 'script') return { error: 'exec action has no command' }
  const { script, args } = command.value
  let shell = command.value.shell
  // No shell named: bash where it exists (what most scripts assume), else sh; PowerShell on Windows.
  if (shell === Shell.UNSPECIFIED) {
    if (platform === 'win32') shell = Shell.POWERSHELL
    else shell = findExecutable('bash', env, platform) ? Shell.BASH : Shell.SH
  }
  const name = SHELL_NAMES[shell] ?? `#${shell}`
  const file = findExecutable(name, env, platform)
  if (!file) return { error: `shell ${name} not found` }
  switch (shell) {
    case Shell.BASH:
    case Shell.SH:
    case Shell.ZSH:
      // `sh -c script name args…`: the word after the script is $0, so the args become $1….
      return { file, args: ['-c', script, name, ...args] }
    case Shell.POWERSHELL:
    case Shell.PWSH:
      return { file, args: ['-NoProfile', '-NonInteractive', '-Command', powershellCommand(script, args)] }
    case Shell.CMD:
      // cmd has no positional parameters; /s makes it strip exactly the outer quotes we add.
      return { file, args: ['/d', '/s', '/c', `"${[script, ...args.map(cmdQuote)].join(' ')}"`], windowsVerbatimArguments: true }
    default:
      return { error: `shell ${name} is not supported` }
  }
}

/** With args, the script runs as a script block so they arrive as $args[0]…. */
function powershellCommand(script: string, args: string[]): string {
  if (args.length === 0) return script
  const quoted = args.map((a) => `'${a.replaceAll("'", "''")}'`)
  return `& {\n${script}\n} ${quoted.join(' ')}`
}

function cmdQuote(arg: string): string {
  return /^[\w.:\\/=-]+$/.test(arg) ? arg : `"${arg.replaceAll('"', '""')}"`
}

/** `which`: the absolute path of an executable `name`, or undefined. */
export function findExecutable(name: string, env: Env, platform = process.platform): string | undefined {
  const exts = platform === 'win32' ? ['', ...(envValue(env, 'PATHEXT', platform) ?? '.EXE;.CMD;.BAT;.COM').split(';')] : ['']
  if (name.includes('/') || (platform === 'win32' && name.includes('\\'))) {
    return exts.map((e) => path.resolve(name + e)).find(isExecutableFile)
  }
  const dirs = (envValue(env, 'PATH', platform) ?? '').split(platform === 'win32' ? ';' : ':').filter(Boolean)
  for (const dir of dirs) {
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext)
      if (isExecutableFile(candidate)) return candidate
    }
  }
  return undefined
}

function isExecutableFile(file: string): boolean {
  try {
    if (!statSync(file).isFile()) return false
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}

/** Windows environment names are case-insensitive (`Path`). */
function envValue(env: Env, key: string, platform: NodeJS.Platform): string | undefined {
  if (platform !== 'win32') return env[key]
  const found = Object.keys(env).find((k) => k.toUpperCase() === key)
  return found === undefined ? undefined : env[found]
}
