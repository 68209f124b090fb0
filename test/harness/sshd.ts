import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { generateSshKey, type SshKeyPair } from './keys.ts'

/**
 * A real OpenSSH server for SSH executor tests: `/usr/sbin/sshd -D -e` on 127.0.0.1 and a free
 * port, with its own host keys and a throw-away Linux user (`opsc-ssh-<random>`, /bin/sh) that
 * logs in with a password, an Ed25519 key, a passphrase-protected RSA key or an ECDSA key. stop() kills the
 * server and every process of that user, then removes the user, its home and the temp dir.
 * Needs root (useradd) and openssh-server (installed with apt-get when missing and possible).
 */

const SSHD = '/usr/sbin/sshd'
const TOOL_ENV = { ...process.env, PATH: [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'])].join(':') }

export interface HostKey {
  /** `ssh-ed25519`, `ssh-rsa` */
  type: string
  /** OpenSSH form: `SHA256:<base64 without padding>`. */
  fingerprint: string
  /** The `.pub` line. */
  publicKey: string
}

export interface TestSshd {
  host: '127.0.0.1'
  port: number
  user: string
  password: string
  /** Home directory of the test user. */
  home: string
  keys: { ed25519: SshKeyPair; rsaWithPassphrase: SshKeyPair & { passphrase: string }; ecdsa: SshKeyPair }
  /**
   * With `startSshd({ sudo: true })` on a machine that has sudo: a second throw-away user the test
   * user may run anything as, without a password (`sudo -n -u <runAsUser>`); else undefined.
   */
  runAsUser: string | undefined
  hostKeys: { ed25519: HostKey; rsa: HostKey }
  /** Adds a public key (an `authorized_keys` line) the test user may log in with. */
  authorize(publicKey: string): void
  /** The server's stderr so far (`-e`: its log). */
  log(): string
  /** How many logins the server has accepted since it last (re)started (its `Accepted …` log lines). */
  accepted(): number
  /**
   * Restarts sshd on the same port, ending every connection it serves (as a rebuilt host would);
   * with `newHostKeys` it presents freshly generated host keys.
   */
  restart(opts?: { newHostKeys?: boolean }): Promise<void>
  stop(): Promise<void>
}

/** Why a real sshd cannot run here, or undefined when it can (installing openssh-server if needed). */
export function sshdUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `the sshd harness needs Linux (this is ${process.platform})`
  if (process.getuid?.() !== 0) return 'the sshd harness needs root (it creates a throw-away user)'
  if (!existsSync(SSHD) && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
    spawnSync('apt-get', ['install', '-y', '-q', 'openssh-server'], { stdio: 'ignore', env: { ...TOOL_ENV, DEBIAN_FRONTEND: 'noninteractive' } })
  }
  if (!existsSync(SSHD)) return `${SSHD} is missing (apt-get install -y openssh-server)`
  return undefined
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer()
    srv.once('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number }
      srv.close(() => resolve(port))
    })
  })
}

function hostKey(file: string): HostKey {
  const publicKey = readFileSync(`${file}.pub`, 'utf8').trim()
  const [type, blob] = publicKey.split(/\s+/)
  const fingerprint = `SHA256:${createHash('sha256').update(Buffer.from(blob!, 'base64')).digest('base64').replace(/=+$/, '')}`
  return { type: type!, fingerprint, publicKey }
}

function generateHostKeys(dir: string): { ed25519: HostKey; rsa: HostKey } {
  for (const type of ['ed25519', 'rsa'] as const) {
    const file = path.join(dir, `ssh_host_${type}_key`)
    rmSync(file, { force: true })
    rmSync(`${file}.pub`, { force: true })
    execFileSync('ssh-keygen', ['-q', '-t', type, ...(type === 'rsa' ? ['-b', '2048'] : []), '-N', '', '-C', 'opsc-test-host', '-f', file], { stdio: 'ignore' })
  }
  return { ed25519: hostKey(path.join(dir, 'ssh_host_ed25519_key')), rsa: hostKey(path.join(dir, 'ssh_host_rsa_key')) }
}

export interface SshdOptions {
  /** Also create a user the test user may `sudo -n -u` to. */
  sudo?: boolean
  /**
   * Password logins only through keyboard-interactive (`PasswordAuthentication no`), which
   * OpenSSH on Linux answers through PAM: this turns `UsePAM yes` on.
   */
  kbdInteractiveOnly?: boolean
  maxStartups?: string
  maxSessions?: number
  /** Extra sshd_config lines. */
  extraConfig?: string[]
}

function sshdConfig(dir: string, port: number, user: string, opts: SshdOptions): string {
  const kbd = opts.kbdInteractiveOnly === true
  return [
    `Port ${port}`,
    'ListenAddress 127.0.0.1',
    `HostKey ${path.join(dir, 'ssh_host_ed25519_key')}`,
    `HostKey ${path.join(dir, 'ssh_host_rsa_key')}`,
    `PidFile ${path.join(dir, 'sshd.pid')}`,
    `UsePAM ${kbd ? 'yes' : 'no'}`,
    `PasswordAuthentication ${kbd ? 'no' : 'yes'}`,
    'KbdInteractiveAuthentication yes',
    'PubkeyAuthentication yes',
    'AuthorizedKeysFile .ssh/authorized_keys',
    'StrictModes no',
    `MaxSessions ${opts.maxSessions ?? 10}`,
    `MaxStartups ${opts.maxStartups ?? '100:30:200'}`,
    ...(opts.extraConfig ?? []),
    'PermitRootLogin no',
    `AllowUsers ${user}`,
    'AllowTcpForwarding yes',
    'Subsystem sftp internal-sftp',
    'LogLevel VERBOSE',
    '',
  ].join('\n')
}

/** Resolves once the port answers with an SSH banner; rejects when sshd exits first or after the deadline. */
async function waitForBanner(port: number, proc: ChildProcess, stderr: () => string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`sshd exited (${proc.exitCode ?? proc.signalCode}): ${stderr().trim()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const sock = createConnection({ host: '127.0.0.1', port })
      const done = (v: boolean) => {
        sock.destroy()
        resolve(v)
      }
      sock.setTimeout(1000, () => done(false))
      sock.once('error', () => done(false))
      sock.once('data', (d) => done(d.toString('latin1').startsWith('SSH-')))
    })
    if (ok) return
    if (Date.now() > deadline) throw new Error(`sshd did not answer on 127.0.0.1:${port} within ${timeoutMs} ms: ${stderr().trim()}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

function killUserProcesses(user: string): void {
  spawnSync('pkill', ['-KILL', '-u', user], { stdio: 'ignore', env: TOOL_ENV })
}

function removeUser(user: string): void {
  // userdel refuses while the user still has processes; they die within moments of SIGKILL.
  for (let i = 0; i < 50; i++) {
    killUserProcesses(user)
    const res = spawnSync('userdel', ['-r', '-f', user], { encoding: 'utf8', env: TOOL_ENV })
    if (res.status === 0 || /does not exist/.test(res.stderr ?? '')) return
    spawnSync('sleep', ['0.1'])
  }
}

function createUser(prefix = 'opsc-ssh'): { user: string; password: string; home: string } {
  const user = `${prefix}-${randomBytes(4).toString('hex')}`
  // Base64url of random bytes, prefixed so it never starts with '-'; it cannot contain the user name.
  const password = `Pw-${randomBytes(18).toString('base64url')}`
  execFileSync('useradd', ['-m', '-s', '/bin/sh', user], { stdio: 'ignore', env: TOOL_ENV })
  try {
    execFileSync('chpasswd', [], { input: `${user}:${password}\n`, stdio: ['pipe', 'ignore', 'pipe'], env: TOOL_ENV })
    const home = execFileSync('getent', ['passwd', user], { encoding: 'utf8' }).trim().split(':')[5]!
    return { user, password, home }
  } catch (err) {
    removeUser(user)
    throw err
  }
}

function authorizeKeys(home: string, user: string, keys: string[]): void {
  // Written as root, then handed to the user (sshd reads it as the user).
  const uid = Number(execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', user], { encoding: 'utf8' }).trim())
  const sshDir = path.join(home, '.ssh')
  mkdirSync(sshDir, { recursive: true, mode: 0o700 })
  writeFileSync(path.join(sshDir, 'authorized_keys'), `${keys.join('\n')}\n`, { mode: 0o600 })
  chownSync(sshDir, uid, gid)
  chownSync(path.join(sshDir, 'authorized_keys'), uid, gid)
  chmodSync(sshDir, 0o700)
}

const hasSudo = () => existsSync('/usr/bin/sudo') && existsSync('/etc/sudoers.d')

/** A second user the test user may become with `sudo -n -u`; returns it and its sudoers file. */
function createRunAsUser(user: string): { runAsUser: string; sudoers: string } {
  const runAsUser = createUser('opsc-run').user
  const sudoers = `/etc/sudoers.d/${user.replace(/[^A-Za-z0-9_-]/g, '_')}`
  writeFileSync(sudoers, `${user} ALL=(${runAsUser}) NOPASSWD: ALL\n`, { mode: 0o440 })
  return { runAsUser, sudoers }
}

export async function startSshd(opts: SshdOptions = {}): Promise<TestSshd> {
  const why = sshdUnavailable()
  if (why) throw new Error(why)
  // Debian's sshd refuses to start without its privilege separation directory.
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 })
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-sshd-'))
  const { user, password, home } = createUser()
  let runAs: { runAsUser: string; sudoers: string } | undefined
  let proc: ChildProcess | undefined
  let stderr = ''
  let stopped = false
  const removeAll = () => {
    if (runAs) {
      rmSync(runAs.sudoers, { force: true })
      removeUser(runAs.runAsUser)
    }
    removeUser(user)
    rmSync(dir, { recursive: true, force: true })
  }
  const cleanupOnExit = () => {
    if (stopped) return
    if (proc?.pid) spawnSync('kill', ['-KILL', String(proc.pid)])
    removeAll()
  }
  process.once('exit', cleanupOnExit)
  try {
    if (opts.sudo && hasSudo()) runAs = createRunAsUser(user)
    const passphrase = `Pp-${randomBytes(12).toString('base64url')}`
    const keys = { ed25519: generateSshKey('ed25519'), rsaWithPassphrase: { ...generateSshKey('rsa', { passphrase, bits: 2048 }), passphrase }, ecdsa: generateSshKey('ecdsa') }
    const authorized = [keys.ed25519.publicKey, keys.rsaWithPassphrase.publicKey, keys.ecdsa.publicKey]
    authorizeKeys(home, user, authorized)
    let hostKeys = generateHostKeys(dir)
    const configFile = path.join(dir, 'sshd_config')

    const launch = async (port: number) => {
      writeFileSync(configFile, sshdConfig(dir, port, user, opts), { mode: 0o600 })
      stderr = ''
      const p = spawn(SSHD, ['-D', '-e', '-f', configFile], { stdio: ['ignore', 'ignore', 'pipe'], env: TOOL_ENV })
      p.stderr!.on('data', (d) => (stderr += d))
      proc = p
      await waitForBanner(port, p, () => stderr)
    }
    const kill = async () => {
      const p = proc
      if (!p || p.exitCode !== null || p.signalCode !== null) return
      const exited = new Promise((r) => p.once('exit', r))
      // The listener's children serve the open connections; they outlive it unless told.
      spawnSync('pkill', ['-TERM', '-P', String(p.pid)], { stdio: 'ignore', env: TOOL_ENV })
      p.kill('SIGTERM')
      const timer = setTimeout(() => p.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    }

    let port = 0
    for (let attempt = 0; ; attempt++) {
      port = await freePort()
      try {
        await launch(port)
        break
      } catch (err) {
        await kill()
        // Another process may have taken the port between probing and binding it.
        if (attempt >= 4 || !/Bind to port|Address already in use/i.test(String(err))) throw err
      }
    }

    const handle: TestSshd = {
      host: '127.0.0.1',
      port,
      user,
      password,
      home,
      keys,
      runAsUser: runAs?.runAsUser,
      get hostKeys() {
        return hostKeys
      },
      authorize(publicKey) {
        authorized.push(publicKey.trim())
        authorizeKeys(home, user, authorized)
      },
      log: () => stderr,
      accepted: () => (stderr.match(/^Accepted \S+ for /gm) ?? []).length,
      async restart(opts = {}) {
        await kill()
        if (opts.newHostKeys) hostKeys = generateHostKeys(dir)
        await launch(port)
      },
      async stop() {
        if (stopped) return
        stopped = true
        process.removeListener('exit', cleanupOnExit)
        await kill()
        removeAll()
      },
    }
    return handle
  } catch (err) {
    cleanupOnExit()
    stopped = true
    process.removeListener('exit', cleanupOnExit)
    throw err
  }
}
