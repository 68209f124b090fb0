import { Command } from 'commander'
import { ConfigError, loadConfig, type ControllerConfig } from './config.ts'
import { DataDirLockedError } from './data-dir.ts'
import { AppError } from './errors.ts'
import { ListenError } from './http/server.ts'
import { createLogger } from './log.ts'
import { VERSION } from '../../proto/src/product-version.ts'

/** Operator mistakes and unreachable dependencies end in one line, never a stack trace. */
function fail(err: unknown): never {
  if (err instanceof ConfigError) {
    process.stderr.write(`opsconductor: ${err.message}\n`)
    process.exit(2)
  }
  if (err instanceof AppError || err instanceof ListenError || err instanceof DataDirLockedError) {
    process.stderr.write(`opsconductor: ${err.message}\n`)
    process.exit(1)
  }
  process.stderr.write(`opsconductor: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`)
  process.exit(1)
}

function config(): ControllerConfig {
  try {
    return loadConfig()
  } catch (err) {
    fail(err)
  }
}

/** The graceful stop's hard limit (the listeners themselves drain within 8 s). */
const STOP_DEADLINE_MS = 30_000

async function runController(): Promise<void> {
  const cfg = config()
  const log = createLogger({ level: cfg.OPSC_LOG_LEVEL, pretty: process.stdout.isTTY })
  // Loaded here, not at the top, so `--help` and `version` stay instant.
  const { startController } = await import('./main.ts')
  const controller = await startController(cfg, log).catch((err) => {
    log.error({ err: err instanceof AppError ? { message: err.message } : err }, 'controller.start_failed')
    fail(err)
  })
  let stopping = false
  const stop = (signal: string) => {
    if (stopping) {
      log.warn({ signal }, 'controller.forced_exit')
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'controller.signal')
    // Work abandoned by the bounded stop fails once its connections close: expected now, not a crash.
    process.on('unhandledRejection', (err) => log.warn({ err }, 'controller.stop_abandoned_work_failed'))
    // A part that never finishes stopping (a database that vanished mid-query) must not keep the process alive.
    setTimeout(() => {
      log.error({ afterMs: STOP_DEADLINE_MS }, 'controller.stop_timed_out')
      process.exit(1)
    }, STOP_DEADLINE_MS).unref()
    controller.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'controller.stop_failed')
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

async function runMigrate(): Promise<void> {
  const cfg = config()
  const { openMigratedDatabase } = await import('./main.ts')
  const { appliedMigrationCount } = await import('./db/migrate.ts')
  const database = await openMigratedDatabase(cfg).catch(fail)
  const applied = await appliedMigrationCount(database)
  await database.close()
  process.stdout.write(`database is at migration ${applied} (${database.description})\n`)
}

const program = new Command()
  .name('opsconductor')
  .description('OpsConductor controller: API, web UI, agent gateway, engine and scheduler.')
  .version(VERSION, '-v, --version')
  .showHelpAfterError()

program
  .command('controller')
  .description('run the controller (what `npm start` runs); configured through OPSC_* environment variables')
  .option('-c, --config <file>', 'JSON file of OPSC_* settings (environment variables win)')
  .action(async (opts: { config?: string }) => {
    if (opts.config) process.env.OPSC_CONFIG_FILE = opts.config
    await runController()
  })

program
  .command('migrate')
  .description('apply pending database migrations and exit (the controller also does this at start)')
  .option('-c, --config <file>', 'JSON file of OPSC_* settings')
  .action(async (opts: { config?: string }) => {
    if (opts.config) process.env.OPSC_CONFIG_FILE = opts.config
    await runMigrate()
  })

/** Runs `fn` against the configured (migrated) database, printing its one-line result. */
async function withDatabase(fn: (db: import('./db/client.ts').Db) => Promise<{ exitCode: number; output: string }>): Promise<void> {
  const cfg = config()
  const { openMigratedDatabase } = await import('./main.ts')
  const database = await openMigratedDatabase(cfg).catch(fail)
  try {
    const { exitCode, output } = await fn(database.db)
    process.stdout.write(`${output}\n`)
    process.exitCode = exitCode
  } catch (err) {
    await database.close()
    fail(err)
  }
  await database.close()
}

async function readStdinPassword(): Promise<string> {
  const chunks: Buffer[] = []
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '')
}

const admin = program.command('admin').description('manage users from the command line (works without the API)')
admin
  .command('create')
  .description('create a user; prints a generated password unless --password-stdin is given')
  .requiredOption('--username <name>', 'the new user')
  .option('--role <role>', 'admin, operator or viewer', 'admin')
  .option('--password-stdin', 'read the password from standard input')
  .action(async (opts: { username: string; role: string; passwordStdin?: boolean }) => {
    const password = opts.passwordStdin ? await readStdinPassword() : undefined
    const { createUserCommand } = await import('./users/cli.ts')
    await withDatabase((db) => createUserCommand(db, { username: opts.username, role: opts.role, password }))
  })
admin
  .command('reset-password <username>')
  .description("set a new password (generated unless --password-stdin) and end the user's sessions")
  .option('--password-stdin', 'read the password from standard input')
  .action(async (username: string, opts: { passwordStdin?: boolean }) => {
    const password = opts.passwordStdin ? await readStdinPassword() : undefined
    const { resetPasswordCommand } = await import('./users/cli.ts')
    await withDatabase((db) => resetPasswordCommand(db, username, password))
  })

program
  .command('audit')
  .description('audit trail tools')
  .command('verify')
  .description('check the hash chain of the audit log; exits non-zero naming the first broken row')
  .action(async () => {
    const { auditVerifyCommand } = await import('./audit/cli.ts')
    await withDatabase(auditVerifyCommand)
  })

const keys = program.command('keys').description('master key and assignment-signing key management (see README)')
keys
  .command('rotate')
  .description('introduce a new master key (key-file mode) and re-wrap every stored secret with the current key')
  .option('--rewrap-only', 're-wrap to the current key without creating a new one')
  .action(async (opts: { rewrapOnly?: boolean }) => {
    const { keysRotateCommand } = await import('./crypto/rotate.ts')
    await withDatabase((db) => keysRotateCommand(db, config(), { rewrapOnly: opts.rewrapOnly === true }))
  })
keys
  .command('retire')
  .description('drop older master keys once no stored secret uses them')
  .action(async () => {
    const { keysRetireCommand } = await import('./crypto/rotate.ts')
    await withDatabase((db) => keysRetireCommand(db, config()))
  })

keys
  .command('rotate-signing')
  .description('make a new assignment-signing key current (agents are told over their sessions before it is used)')
  .action(async () => {
    const { rotateSigningCommand } = await import('./agents/cli.ts')
    await withDatabase((db) => rotateSigningCommand(db, config()))
  })
keys
  .command('retire-signing <key-id>')
  .description('stop agents accepting an older assignment-signing key')
  .action(async (keyId: string) => {
    const { retireSigningCommand } = await import('./agents/cli.ts')
    await withDatabase((db) => retireSigningCommand(db, keyId))
  })

program
  .command('version')
  .description('print the version')
  .action(() => {
    process.stdout.write(`opsconductor ${VERSION}\n`)
  })

await program.parseAsync(process.argv).catch(fail)
