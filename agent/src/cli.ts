import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { VERSION } from '../../proto/src/product-version.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'
import { EXIT, EXIT_CODES_HELP, exitCodeFor, isOperatorError, UsageError, type ExitCode } from './exit-codes.ts'

/** Operator mistakes and refusals end in one line on stderr, never a stack trace; the exit code says which kind. */
function fail(err: unknown, code?: ExitCode): never {
  const e = err as Error
  process.stderr.write(`opsconductor-agent: ${isOperatorError(err) ? e.message : `unexpected error: ${e?.stack ?? String(err)}`}\n`)
  process.exit(code ?? exitCodeFor(err))
}

// grpc-js sets the TLS server name to the dialled address even when it is an IP, and Node warns
// about that (DEP0123) on every connection. The certificate is still verified against the IP;
// the warning is noise for operators who enrol with `--controller 10.0.0.5:8444`.
process.removeAllListeners('warning')
process.on('warning', (w: Error & { code?: string }) => {
  if (w.code !== 'DEP0123') process.stderr.write(`opsconductor-agent: warning: ${w.name}: ${w.message}\n`)
})

const program = new Command()
  .name('opsconductor-agent')
  .description('OpsConductor agent: dials out to the controller over gRPC/TLS, runs signed assignments and streams their output back.')
  .version(`${VERSION} (protocol ${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor})`, '-v, --version')
  .showHelpAfterError()
  .addHelpText('after', EXIT_CODES_HELP)
  // Before the subcommands: they inherit it, so a bad flag anywhere ends in exit 2, not commander's 1.
  .exitOverride()

const stateDirOption = () => new Option('--state-dir <dir>', 'the agent state dir (default /var/lib/opsconductor-agent, or %ProgramData%\\OpsConductor\\Agent)')

program
  .command('enroll')
  .description('enrol this host with a controller using a one-time token (run once, as the service user)')
  .requiredOption(
    '--controller <host:port...>',
    "the controller's agent gateway (gRPC) address; repeat it, or separate with commas, to give every controller of a multi-controller deployment (all must present the same CA)",
  )
  .requiredOption('--token <token>', 'the enrollment token an admin created')
  .requiredOption('--ca-fingerprint <sha256:…>', "the controller CA's SHA-256 fingerprint, shown with the token")
  .option('--state-dir <dir>', 'where the identity is kept (default /var/lib/opsconductor-agent, or %ProgramData%\\OpsConductor\\Agent)')
  .action(async (opts: { controller: string[]; token: string; caFingerprint: string; stateDir?: string }) => {
    const { enroll, parseControllerList } = await import('./enroll.ts')
    const { normaliseFingerprint } = await import('./pin.ts')
    const { defaultStateDir } = await import('./state.ts')
    const stateDir = opts.stateDir ?? defaultStateDir()
    try {
      parseControllerList(opts.controller)
      normaliseFingerprint(opts.caFingerprint)
    } catch (err) {
      fail(err, EXIT.config)
    }
    const { agentId, controllers } = await enroll({
      controller: opts.controller,
      token: opts.token,
      caFingerprint: opts.caFingerprint,
      stateDir,
      onUnreachable: (address, reason) => process.stderr.write(`opsconductor-agent: warning: controller ${address} not reachable now (${reason}); kept in the list\n`),
    }).catch(fail)
    const via = controllers.length > 1 ? `; controllers ${controllers.join(', ')}` : ''
    process.stdout.write(`enrolled as agent ${agentId}; identity stored in ${stateDir}${via}\n`)
  })

const int = (name: string) => (raw: string) => {
  const n = Number(raw)
  if (!/^\d+$/.test(raw.trim()) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${name} must be a whole number (got "${raw}")`)
  return n
}

/** Defaults from the environment go through the same check as flags: a bad value is a configuration error. */
function envInt(variable: string, fallback: number): number {
  const raw = process.env[variable]
  if (raw === undefined || raw === '') return fallback
  try {
    return int(variable)(raw)
  } catch (err) {
    return fail(new UsageError((err as Error).message), EXIT.config)
  }
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

program
  .command('run')
  .description('run the agent: connect out to the controller and execute signed assignments (the service entry point)')
  .addOption(stateDirOption())
  .option('--max-concurrent <n>', 'assignments run at once; more wait in order (env OPSC_AGENT_MAX_CONCURRENT)', int('--max-concurrent'))
  .option('--spool-max-bytes <n>', 'disk budget for unacknowledged output (env OPSC_AGENT_SPOOL_MAX_BYTES)', int('--spool-max-bytes'))
  .option('--allowed-root <dir...>', 'restrict put_file/get_file to these directories')
  .option('--reconnect-max-ms <n>', 'cap of the reconnect backoff (env OPSC_AGENT_RECONNECT_MAX_MS)', int('--reconnect-max-ms'))
  .option(
    '--controller <host:port...>',
    'replace the stored controller list (repeat, or separate with commas; env OPSC_AGENT_CONTROLLERS); the new list is kept in the state dir',
  )
  .addOption(new Option('--log-level <level>', 'log level (env OPSC_AGENT_LOG_LEVEL)').choices(LOG_LEVELS))
  .addHelpText('after', '\nExit codes: 0 stopped by SIGTERM/SIGINT, 1 unexpected failure, 2 configuration error, 3 identity refused by the controller.')
  .action(async (flags: { stateDir?: string; maxConcurrent?: number; spoolMaxBytes?: number; allowedRoot?: string[]; reconnectMaxMs?: number; logLevel?: string; controller?: string[] }) => {
    const { parseControllerList } = await import('./enroll.ts')
    let controllers: string[] | undefined
    try {
      if (flags.controller) controllers = parseControllerList(flags.controller)
      else if (process.env.OPSC_AGENT_CONTROLLERS) controllers = parseControllerList(process.env.OPSC_AGENT_CONTROLLERS, 'OPSC_AGENT_CONTROLLERS')
    } catch (err) {
      fail(new UsageError((err as Error).message), EXIT.config)
    }
    const opts = {
      stateDir: flags.stateDir,
      maxConcurrent: flags.maxConcurrent ?? envInt('OPSC_AGENT_MAX_CONCURRENT', 4),
      spoolMaxBytes: flags.spoolMaxBytes ?? envInt('OPSC_AGENT_SPOOL_MAX_BYTES', 256 * 1024 * 1024),
      allowedRoot: flags.allowedRoot,
      reconnectMaxMs: flags.reconnectMaxMs ?? envInt('OPSC_AGENT_RECONNECT_MAX_MS', 30_000),
      logLevel: flags.logLevel ?? process.env.OPSC_AGENT_LOG_LEVEL ?? 'info',
    }
    if (!LOG_LEVELS.includes(opts.logLevel)) fail(new UsageError(`OPSC_AGENT_LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')} (got "${opts.logLevel}")`), EXIT.config)
    const { runAgent } = await import('./run.ts')
    const { defaultStateDir } = await import('./state.ts')
    let agent: import('./run.ts').RunningAgent
    try {
      agent = runAgent({
        stateDir: opts.stateDir ?? defaultStateDir(),
        maxConcurrent: Math.max(1, opts.maxConcurrent),
        spoolMaxBytes: opts.spoolMaxBytes,
        allowedRoots: opts.allowedRoot ?? [],
        backoffBaseMs: Math.min(1_000, opts.reconnectMaxMs),
        backoffCapMs: opts.reconnectMaxMs,
        logLevel: opts.logLevel,
        ...(controllers ? { controllers } : {}),
      })
    } catch (err) {
      // Everything runAgent reads up front is configuration: the enrollment, the journal, the spool.
      fail(err, isOperatorError(err) ? EXIT.config : EXIT.failure)
    }
    let stopping = false
    const stop = (code: ExitCode) => {
      if (stopping) return
      stopping = true
      agent.stop().then(() => process.exit(code), (err) => fail(err, EXIT.failure))
    }
    process.on('SIGTERM', () => stop(EXIT.ok))
    process.on('SIGINT', () => stop(EXIT.ok))
    void agent.done.then(({ refused }) => {
      if (!refused) return
      process.stderr.write(`opsconductor-agent: the controller refused this agent's identity (${refused}); enrol it again: \`opsconductor-agent unenroll\`, then \`enroll\` with a new token\n`)
      stop(EXIT.refused)
    })
  })

program
  .command('status')
  .description("show this host's agent: enrolled, running, connected, version and unsent output (reads the state dir only)")
  .addOption(stateDirOption())
  .option('--json', 'print one JSON object instead of aligned lines')
  .addHelpText('after', '\nExit codes: 0 connected, 2 not enrolled or unreadable state, 3 identity refused by the controller, 4 not running, 5 running but not connected.')
  .action(async (opts: { stateDir?: string; json?: boolean }) => {
    const { agentStatus, formatStatus } = await import('./status.ts')
    const { defaultStateDir } = await import('./state.ts')
    const report = agentStatus(opts.stateDir ?? defaultStateDir())
    process.stdout.write(opts.json ? JSON.stringify(report, null, 2) + '\n' : formatStatus(report))
    process.exitCode = report.exit_code
  })

program
  .command('unenroll')
  .description("remove this host's identity, journal and spool (the agent must be stopped); an admin then revokes the agent on the controller")
  .addOption(stateDirOption())
  .option('--yes', 'do not ask for confirmation (required when stdin is not a terminal)')
  .addHelpText('after', '\nExit codes: 0 removed, 1 the agent is running or the answer was no, 2 not enrolled or no confirmation possible.')
  .action(async (opts: { stateDir?: string; yes?: boolean }) => {
    const { planUnenroll, revokeHint, unenroll } = await import('./unenroll.ts')
    const { defaultStateDir } = await import('./state.ts')
    const stateDir = opts.stateDir ?? defaultStateDir()
    const plan = (() => {
      try {
        return planUnenroll(stateDir)
      } catch (err) {
        return fail(err)
      }
    })()
    const who = plan.agentId ? `agent ${plan.agentId}` : 'the agent (its agent.json is damaged)'
    if (!opts.yes) {
      if (!process.stdin.isTTY) fail(new UsageError('unenroll needs confirmation and stdin is not a terminal; pass --yes'), EXIT.config)
      const lost = plan.spool.entries > 0 ? ` ${plan.spool.entries} output entries the controller has not acknowledged are lost.` : ''
      const { createInterface } = await import('node:readline/promises')
      const rl = createInterface({ input: process.stdin, output: process.stderr })
      const answer = await rl.question(`Remove the identity, journal and spool of ${who} from ${stateDir}?${lost} This host can only rejoin by enrolling again. [y/N] `)
      rl.close()
      if (!/^y(es)?$/i.test(answer.trim())) {
        process.stderr.write('opsconductor-agent: unenroll cancelled; nothing was removed\n')
        process.exit(EXIT.failure)
      }
    }
    try {
      unenroll(stateDir)
    } catch (err) {
      fail(err)
    }
    const discarded = plan.spool.entries > 0 ? `; discarded ${plan.spool.entries} unacknowledged output entries` : ''
    process.stdout.write(`unenrolled ${who}: removed its identity, journal and spool from ${stateDir}${discarded}\n${revokeHint(plan.agentId)}`)
  })

try {
  await program.parseAsync(process.argv)
} catch (err) {
  // Commander has already printed its message (and the help); --help and --version end here with 0.
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? EXIT.ok : EXIT.config)
  fail(err)
}
