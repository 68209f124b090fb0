import { execFile, execFileSync } from 'node:child_process'
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir, userInfo } from 'node:os'
import path from 'node:path'
import postgres from 'postgres'
import { freePort } from '../harness/agents.ts'

/*
 * A private Postgres cluster for one chaos run: its own data directory, port and socket directory,
 * so it can be crash-restarted (`pg_ctl restart -m immediate`) without touching the machine's shared
 * Postgres on :5432 that other tests use at the same time. Trust auth on 127.0.0.1 only.
 *
 * initdb refuses to run as root: as root, the cluster belongs to the `postgres` OS user (runuser).
 */

const BIN_ROOT = '/usr/lib/postgresql'

/** The newest installed server's bin directory (OPSC_CHAOS_PG_BIN overrides), or undefined. */
export function postgresBinDir(): string | undefined {
  if (process.env.OPSC_CHAOS_PG_BIN) return existsSync(path.join(process.env.OPSC_CHAOS_PG_BIN, 'initdb')) ? process.env.OPSC_CHAOS_PG_BIN : undefined
  if (!existsSync(BIN_ROOT)) return undefined
  const versions = readdirSync(BIN_ROOT)
    .filter((v) => /^\d+$/.test(v) && existsSync(path.join(BIN_ROOT, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions[0] ? path.join(BIN_ROOT, versions[0], 'bin') : undefined
}

/** Why a private cluster cannot be made here, or false. */
export function privatePostgresUnavailable(): string | false {
  if (process.platform !== 'linux') return 'a private Postgres cluster is made with the Debian server binaries (Linux only)'
  if (!postgresBinDir()) return `no Postgres server binaries under ${BIN_ROOT} (initdb, pg_ctl)`
  if (userInfo().uid === 0 && !existsSync('/usr/sbin/runuser') && !existsSync('/sbin/runuser')) return 'running as root without runuser (initdb refuses root)'
  return false
}

function run(file: string, args: string[], timeoutMs = 120_000): Promise<string> {
  const asRoot = userInfo().uid === 0
  const [cmd, argv] = asRoot ? ['runuser', ['-u', 'postgres', '--', file, ...args]] : [file, args]
  return new Promise((resolve, reject) => {
    execFile(cmd, argv, { timeout: timeoutMs, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${path.basename(file)} ${args.join(' ')} failed: ${err.message}\n${stdout}\n${stderr}`))
      else resolve(stdout)
    })
  })
}

export class PostgresCluster {
  restarts = 0

  private constructor(
    readonly dir: string,
    readonly port: number,
    private readonly bin: string,
  ) {}

  /** initdb + start on a free loopback port. */
  static async start(opts: { maxConnections?: number } = {}): Promise<PostgresCluster> {
    const bin = postgresBinDir()
    if (!bin) throw new Error(String(privatePostgresUnavailable()))
    const dir = mkdtempSync(path.join(tmpdir(), 'opsc-chaos-pg-'))
    if (userInfo().uid === 0) {
      const { uid, gid } = postgresIds()
      chownSync(dir, uid, gid)
    }
    const cluster = new PostgresCluster(dir, await freePort(), bin)
    await run(path.join(bin, 'initdb'), ['-D', cluster.dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--no-sync'])
    // Settings for a throwaway cluster: fast, loopback only, enough connections for a few controllers.
    const conf = [
      `port = ${cluster.port}`,
      `listen_addresses = '127.0.0.1'`,
      `unix_socket_directories = '${dir}'`,
      `max_connections = ${opts.maxConnections ?? 300}`,
      // The OS page cache survives a process crash (-m immediate); only a machine crash needs fsync.
      'fsync = off',
      'full_page_writes = off',
      'shared_buffers = 64MB',
      'log_min_messages = warning',
      'logging_collector = off',
    ].join('\n')
    writeFileSync(path.join(cluster.dataDir, 'postgresql.auto.conf'), `${conf}\n`)
    if (userInfo().uid === 0) chownSync(path.join(cluster.dataDir, 'postgresql.auto.conf'), postgresIds().uid, postgresIds().gid)
    await cluster.ctl(['start', '-w', '-t', '60'])
    await cluster.waitReady()
    return cluster
  }

  get dataDir(): string {
    return path.join(this.dir, 'data')
  }

  private get logFile(): string {
    return path.join(this.dir, 'server.log')
  }

  /** A URL for a database of this cluster. */
  url(database = 'postgres'): string {
    return `postgres://postgres@127.0.0.1:${this.port}/${database}`
  }

  private ctl(args: string[]): Promise<string> {
    return run(path.join(this.bin, 'pg_ctl'), ['-D', this.dataDir, '-l', this.logFile, ...args])
  }

  async createDatabase(name: string): Promise<string> {
    const sql = postgres(this.url(), { max: 1, onnotice: () => {} })
    try {
      await sql.unsafe(`create database "${name}"`)
    } finally {
      await sql.end({ timeout: 5 })
    }
    return this.url(name)
  }

  /**
   * A crash-like restart: every backend is killed without a checkpoint (`-m immediate`), then the
   * server replays its WAL and accepts connections again. Resolves when it answers queries.
   */
  async crashRestart(): Promise<number> {
    const t0 = Date.now()
    await this.ctl(['restart', '-m', 'immediate', '-w', '-t', '120'])
    await this.waitReady()
    this.restarts++
    return Date.now() - t0
  }

  async waitReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const sql = postgres(this.url(), { max: 1, connect_timeout: 2, onnotice: () => {} })
      try {
        await sql`select 1`
        return
      } catch (err) {
        if (Date.now() > deadline) throw new Error(`the private Postgres on :${this.port} did not come back: ${(err as Error).message}`)
      } finally {
        await sql.end({ timeout: 1 }).catch(() => {})
      }
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** For an exiting process (a test runner's timeout): stops the server synchronously, best effort. */
  destroySync(): void {
    try {
      const args = ['-D', this.dataDir, 'stop', '-m', 'immediate', '-w', '-t', '20']
      const pgCtl = path.join(this.bin, 'pg_ctl')
      if (userInfo().uid === 0) execFileSync('runuser', ['-u', 'postgres', '--', pgCtl, ...args], { stdio: 'ignore', timeout: 30_000 })
      else execFileSync(pgCtl, args, { stdio: 'ignore', timeout: 30_000 })
    } catch {
      /* already stopped */
    }
    rmSync(this.dir, { recursive: true, force: true })
  }

  /** Stops the server (fast) and removes its files. */
  async destroy(): Promise<void> {
    await this.ctl(['stop', '-m', 'immediate', '-w', '-t', '60']).catch(() => {})
    rmSync(this.dir, { recursive: true, force: true })
  }
}

let ids: { uid: number; gid: number } | undefined
function postgresIds(): { uid: number; gid: number } {
  if (ids) return ids
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('postgres:'))
  if (!line) throw new Error('no postgres OS user in /etc/passwd (needed to run initdb as root)')
  const [, , uid, gid] = line.split(':')
  ids = { uid: Number(uid), gid: Number(gid) }
  return ids
}
