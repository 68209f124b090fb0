import { Command } from 'commander'
import { VERSION } from '../../proto/src/product-version.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'

/** Operator mistakes and refusals end in one line on stderr, exit 1; never a stack trace. */
function fail(err: unknown): never {
  const known = ['EnrollError', 'PinError', 'StateError', 'JournalError', 'SpoolError']
  const e = err as Error
  process.stderr.write(`opsconductor-agent: ${known.includes(e?.name) ? e.message : `unexpected error: ${e?.stack ?? String(err)}`}\n`)
  process.exit(1)
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

program
  .command('enroll')
  .description('enrol this host with a controller using a one-time token (run once, as the service user)')
  .requiredOption('--controller <host:port>', "the controller's agent gateway (gRPC) address")
  .requiredOption('--token <token>', 'the enrollment token an admin created')
  .requiredOption('--ca-fingerprint <sha256:…>', "the controller CA's SHA-256 fingerprint, shown with the token")
  .option('--state-dir <dir>', 'where the identity is kept (default /var/lib/opsconductor-agent, or %ProgramData%\\OpsConductor\\Agent)')
  .action(async (opts: { controller: string; token: string; caFingerprint: string; stateDir?: string }) => {
    const { enroll } = await import('./enroll.ts')
    const { defaultStateDir } = await import('./state.ts')
    const stateDir = opts.stateDir ?? defaultStateDir()
    const { agentId } = await enroll({ controller: opts.controller, token: opts.token, caFingerprint: opts.caFingerprint, stateDir }).catch(fail)
    process.stdout.write(`enrolled as agent ${agentId}; identity stored in ${stateDir}\n`)
  })

const int = (name: string) => (raw: string) => {
  const n = Number(raw)
  if (!Number.isInteger(n) || n < 0) throw new Error(`${name} must be a whole number (got "${raw}")`)
  return n
}

program
  .command('run')
  .description('run the agent: connect out to the controller and execute signed assignments (the service entry point)')
  .option('--state-dir <dir>', 'where the enrolled identity, journal and spool live')
  .option('--max-concurrent <n>', 'assignments run at once; more wait in order', int('--max-concurrent'), Number(process.env.OPSC_AGENT_MAX_CONCURRENT ?? 4))
  .option('--spool-max-bytes <n>', 'disk budget for unacknowledged output', int('--spool-max-bytes'), Number(process.env.OPSC_AGENT_SPOOL_MAX_BYTES ?? 256 * 1024 * 1024))
  .option('--allowed-root <dir...>', 'restrict put_file/get_file to these directories')
  .option('--reconnect-max-ms <n>', 'cap of the reconnect backoff', int('--reconnect-max-ms'), Number(process.env.OPSC_AGENT_RECONNECT_MAX_MS ?? 30_000))
  .option('--log-level <level>', 'fatal, error, warn, info, debug or trace', process.env.OPSC_AGENT_LOG_LEVEL ?? 'info')
  .action(async (opts: { stateDir?: string; maxConcurrent: number; spoolMaxBytes: number; allowedRoot?: string[]; reconnectMaxMs: number; logLevel: string }) => {
    const { runAgent } = await import('./run.ts')
    const { defaultStateDir } = await import('./state.ts')
    let agent: { stop(): Promise<void> }
    try {
      agent = runAgent({
        stateDir: opts.stateDir ?? defaultStateDir(),
        maxConcurrent: Math.max(1, opts.maxConcurrent),
        spoolMaxBytes: opts.spoolMaxBytes,
        allowedRoots: opts.allowedRoot ?? [],
        backoffBaseMs: Math.min(1_000, opts.reconnectMaxMs),
        backoffCapMs: opts.reconnectMaxMs,
        logLevel: opts.logLevel,
      })
    } catch (err) {
      fail(err)
    }
    let stopping = false
    const stop = () => {
      if (stopping) return
      stopping = true
      agent.stop().then(() => process.exit(0), fail)
    }
    process.on('SIGTERM', stop)
    process.on('SIGINT', stop)
  })

await program.parseAsync(process.argv).catch(fail)
