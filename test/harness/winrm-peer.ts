import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'

/**
 * A WS-Management (WinRM) peer for WinRM executor tests: test/peers/winrm/server.py, a Python server that
 * answers like Windows' WinRM service (Basic on HTTPS, Negotiate/NTLM with message encryption on HTTP,
 * the Windows Remote Shell operations and faults). Commands run here with /bin/sh, with powershell/cmd
 * stand-ins first in PATH. Each peer gets a throw-away user (in its NTLM user file, not a Linux user) and,
 * for HTTPS, a throw-away CA and a server certificate for 127.0.0.1. See test/peers/winrm/README.md.
 */

const PYTHON = '/usr/bin/python3'
const PEER_DIR = path.resolve(import.meta.dirname, '../peers/winrm')
const SERVER = path.join(PEER_DIR, 'server.py')
const GSS_MECH_DIR = '/etc/gss/mech.d'
const TOOL_ENV = { ...process.env, PATH: [...new Set([...(process.env.PATH ?? '').split(':').filter(Boolean), '/usr/local/sbin', '/usr/sbin', '/sbin'])].join(':') }

export interface WinrmPeer {
  /** `http(s)://127.0.0.1:<port>/wsman` */
  url: string
  host: '127.0.0.1'
  port: number
  https: boolean
  username: string
  password: string
  /** The NTLM domain of the user (NTLM also accepts the user without it; Basic takes `user`, `DOMAIN\user`). */
  domain: string
  /** PEM of the CA that signed the server certificate (HTTPS only). */
  caPem: string | undefined
  /** The peer's stderr so far: one line per request (action, shell id, status). */
  log(): string
  stop(): Promise<void>
}

const hasNtlmMech = () => existsSync(GSS_MECH_DIR) && readdirSync(GSS_MECH_DIR).some((f) => readFileSync(path.join(GSS_MECH_DIR, f), 'utf8').includes('1.3.6.1.4.1.311.2.2.10'))
const hasPythonModules = () => spawnSync(PYTHON, ['-c', 'import gssapi, winrm, requests_ntlm'], { stdio: 'ignore' }).status === 0
const hasOpenssl = () => spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0

let unavailable: { reason: string | undefined } | undefined

/** Why the WinRM peer cannot run here, or undefined when it can (installing the Debian packages if needed). */
export function winrmPeerUnavailable(): string | undefined {
  if (unavailable) return unavailable.reason
  const check = (): string | undefined => {
    if (process.platform !== 'linux') return `the WinRM peer needs Linux (this is ${process.platform})`
    const missing = () => !existsSync(PYTHON) || !hasPythonModules() || !hasNtlmMech() || !hasOpenssl()
    if (missing() && process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0) {
      spawnSync('apt-get', ['install', '-y', '-q', 'python3-winrm', 'gss-ntlmssp', 'python3-gssapi', 'openssl'], { stdio: 'ignore', env: { ...TOOL_ENV, DEBIAN_FRONTEND: 'noninteractive' } })
    }
    if (!existsSync(PYTHON)) return `${PYTHON} is missing (apt-get install -y python3)`
    if (!hasPythonModules()) return `${PYTHON} cannot import gssapi, winrm and requests_ntlm (apt-get install -y python3-winrm python3-gssapi)`
    if (!hasNtlmMech()) return `no GSSAPI NTLM mechanism in ${GSS_MECH_DIR} (apt-get install -y gss-ntlmssp)`
    if (!hasOpenssl()) return 'the openssl CLI is missing (apt-get install -y openssl)'
    return undefined
  }
  unavailable = { reason: check() }
  return unavailable.reason
}

/** A throw-away CA and a certificate for 127.0.0.1 it signed; returns the CA PEM and the server files. */
function generateCertificates(dir: string): { caPem: string; cert: string; key: string } {
  const f = (name: string) => path.join(dir, name)
  const openssl = (args: string[]) => execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] })
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
  openssl(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2', '-sha256', '-subj', '/CN=OpsConductor WinRM test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign'])
  openssl(['req', '-new', ...ec, '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=127.0.0.1'])
  writeFileSync(f('server.ext'), [
    'subjectAltName=IP:127.0.0.1,DNS:localhost',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature,keyEncipherment',
    'extendedKeyUsage=serverAuth',
    'subjectKeyIdentifier=hash',
    'authorityKeyIdentifier=keyid',
    '',
  ].join('\n'))
  openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.pem'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.pem'), '-days', '2', '-sha256', '-extfile', f('server.ext')])
  rmSync(f('ca.key'))
  return { caPem: readFileSync(f('ca.pem'), 'utf8'), cert: f('server.pem'), key: f('server.key') }
}

/** Resolves with the port the peer printed (`LISTENING <port>`) once it accepts connections. */
function waitForListening(proc: ChildProcess, stderr: () => string, timeoutMs = 15_000): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => finish(new Error(`the WinRM peer did not start within ${timeoutMs} ms: ${stderr().trim()}`)), timeoutMs)
    const onData = (d: Buffer) => {
      out += d.toString('utf8')
      const m = /^LISTENING (\d+)$/m.exec(out)
      if (m) finish(undefined, Number(m[1]))
    }
    const onExit = (code: number | null, sig: string | null) => finish(new Error(`the WinRM peer exited (${code ?? sig}): ${stderr().trim()}`))
    const finish = (err: Error | undefined, port?: number) => {
      clearTimeout(timer)
      proc.stdout!.off('data', onData)
      proc.off('exit', onExit)
      if (err) reject(err)
      else resolve(port!)
    }
    proc.stdout!.on('data', onData)
    proc.once('exit', onExit)
  })
}

export async function startWinrmPeer(opts: { https: boolean; maxShellsPerUser?: number; allowUnencrypted?: boolean }): Promise<WinrmPeer> {
  const why = winrmPeerUnavailable()
  if (why) throw new Error(why)
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-winrm-'))
  // Windows user names are at most 20 characters; the password never contains the user name.
  const username = `opscwinrm${randomBytes(3).toString('hex')}`
  const password = `Pw-${randomBytes(18).toString('base64url')}`
  const domain = 'OPSCTEST'
  let proc: ChildProcess | undefined
  let stderr = ''
  let stopped = false
  const killGroup = (signal: NodeJS.Signals) => {
    if (!proc?.pid || proc.exitCode !== null || proc.signalCode !== null) return
    try {
      process.kill(-proc.pid, signal)
    } catch {
      // already gone
    }
  }
  const cleanupOnExit = () => {
    if (stopped) return
    killGroup('SIGKILL')
    rmSync(dir, { recursive: true, force: true })
  }
  process.once('exit', cleanupOnExit)
  try {
    const users = path.join(dir, 'ntlm-users')
    writeFileSync(users, `${domain}:${username}:${password}\n`, { mode: 0o600 })
    const home = path.join(dir, 'home')
    mkdirSync(home)
    const args = [SERVER, '--users', users, '--home', home, '--max-shells', String(opts.maxShellsPerUser ?? 30)]
    if (opts.allowUnencrypted) args.push('--allow-unencrypted')
    let caPem: string | undefined
    if (opts.https) {
      const certs = generateCertificates(dir)
      caPem = certs.caPem
      args.push('--https', '--cert', certs.cert, '--key', certs.key)
    }
    // detached: its own process group, so stop() reaches the server and anything it left behind.
    const p = spawn(PYTHON, args, { cwd: dir, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...TOOL_ENV, PYTHONUNBUFFERED: '1', PYTHONDONTWRITEBYTECODE: '1' } })
    proc = p
    p.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')))
    const port = await waitForListening(p, () => stderr)
    return {
      url: `${opts.https ? 'https' : 'http'}://127.0.0.1:${port}/wsman`,
      host: '127.0.0.1',
      port,
      https: opts.https,
      username,
      password,
      domain,
      caPem,
      log: () => stderr,
      async stop() {
        if (stopped) return
        stopped = true
        process.removeListener('exit', cleanupOnExit)
        if (p.exitCode === null && p.signalCode === null) {
          const exited = new Promise((r) => p.once('exit', r))
          // SIGTERM: the peer kills every command's process group, then exits.
          killGroup('SIGTERM')
          const timer = setTimeout(() => killGroup('SIGKILL'), 5000)
          await exited
          clearTimeout(timer)
        }
        p.stdout?.destroy()
        p.stderr?.destroy()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (err) {
    cleanupOnExit()
    stopped = true
    process.removeListener('exit', cleanupOnExit)
    throw err
  }
}
