import { Command } from 'commander'
import { PROTOCOL_VERSION } from '../../proto/src/version.ts'
import { VERSION } from '../../proto/src/product-version.ts'

const program = new Command()
  .name('opsconductor-agent')
  .description(
    'OpsConductor agent: dials out to the controller over gRPC/TLS, runs signed assignments and streams their output back.',
  )
  .version(`${VERSION} (protocol ${PROTOCOL_VERSION.major}.${PROTOCOL_VERSION.minor})`, '-v, --version')
  .showHelpAfterError()

await program.parseAsync(process.argv).catch((err: unknown) => {
  process.stderr.write(`opsconductor-agent: ${(err as Error).message}\n`)
  process.exit(1)
})
