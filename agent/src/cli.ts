import { Command } from 'commander'
import { VERSION } from '../../proto/src/product-version.ts'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'

/** Operator mistakes and refusals end in one line on stderr, exit 1; never a stack trace. */
function fail(err: unknown): never {
  const known = ['EnrollError', 'PinError', 'StateError']
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

await program.parseAsync(process.argv).catch(fail)
