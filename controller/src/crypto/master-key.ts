import { createHash, randomBytes } from 'node:crypto'
import { closeSync, fstatSync, fsyncSync, linkSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, writeSync } from 'node:fs'
import path from 'node:path'
import { inspect } from 'node:util'

/*
 * Master keys wrap the per-secret data keys (see secret-box.ts). They come from OPSC_MASTER_KEY or,
 * when that is unset, from `<data dir>/master.key`, which is created on first start.
 *
 * master.key format (UTF-8 text, mode 0600):
 *   - one key per line: 32 random bytes as standard base64 (44 characters, e.g. `openssl rand -base64 32`);
 *   - the FIRST key is current (new secrets are wrapped with it); later lines are older keys that
 *     are still accepted for decryption, so rotation = put a new key on top, re-wrap, drop the old line;
 *   - blank lines and lines starting with `#` are ignored.
 * Keys are identified by their key id (first 16 hex chars of SHA-256 of the key bytes), which is
 * stored next to every sealed secret; the key itself never leaves this process.
 *
 * OPSC_MASTER_KEY takes the same keys comma-separated, current first. A keyring read from the key
 * file follows the file while the controller runs (see fileKeyring), so `opsconductor keys rotate`
 * in another process needs no restart.
 */

export const MASTER_KEY_FILE = 'master.key'
const KEY_BYTES = 32

export class MasterKey {
  readonly id: string
  constructor(readonly key: Buffer) {
    if (key.length !== KEY_BYTES) throw new Error(`a master key must be ${KEY_BYTES} bytes (got ${key.length})`)
    this.id = masterKeyId(key)
  }
  // A keyring that ends up in a log line or an error dump shows ids only.
  toJSON(): { id: string } {
    return { id: this.id }
  }
  [inspect.custom](): string {
    return `MasterKey { id: '${this.id}' }`
  }
}

export interface Keyring {
  /** Wraps every new data key. */
  readonly current: MasterKey
  /** Every key that can unwrap, current first. */
  readonly keys: readonly MasterKey[]
  /** Where the keys came from, for log lines: `OPSC_MASTER_KEY` or the key file path. */
  readonly source: string
  byId(id: string): MasterKey | undefined
}

export function masterKeyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 16)
}

/** Builds a keyring from raw keys; the first is current. */
export function createKeyring(keys: readonly Buffer[], source = 'memory'): Keyring {
  if (keys.length === 0) throw new Error(`${source}: no master key`)
  const list = keys.map((k) => new MasterKey(Buffer.from(k)))
  const byId = new Map<string, MasterKey>()
  for (const k of list) {
    if (byId.has(k.id)) throw new Error(`${source}: master key ${k.id} is listed twice`)
    byId.set(k.id, k)
  }
  return { current: list[0]!, keys: list, source, byId: (id) => byId.get(id) }
}

/** How a key-file keyring notices that another process rewrote the file. */
export interface ReloadOptions {
  /** At most this often, `current`/`keys` stat the file and re-read it when it changed. */
  checkIntervalMs?: number
  /** At most this often, a lookup of an unknown key id re-reads the file (ids come from stored rows and tokens). */
  unknownKeyRetryMs?: number
  now?: () => number
}

export const DEFAULT_RELOAD = { checkIntervalMs: 5000, unknownKeyRetryMs: 1000 } as const

/**
 * The controller's master keyring: OPSC_MASTER_KEY when set (the key file is then not read or
 * created), otherwise `<dataDir>/master.key`, generated on first start.
 */
export function loadMasterKeyring({ dataDir, envKey, reload }: { dataDir: string; envKey?: string | undefined; reload?: ReloadOptions }): Keyring {
  if (envKey !== undefined) return createKeyring(parseEnvKeys(envKey), 'OPSC_MASTER_KEY')
  const file = keyFilePath(dataDir)
  if (readKeyFile(file) === undefined) createKeyFile(file)
  return fileKeyring(file, reload)
}

export const keyFilePath = (dataDir: string) => path.join(dataDir, MASTER_KEY_FILE)

/** `OPSC_MASTER_KEY=new,old`: comma-separated base64 keys, the first is current. */
export function parseEnvKeys(envKey: string): Buffer[] {
  return envKey.split(',').map((part) => {
    const key = Buffer.from(part.trim(), 'base64')
    if (key.length !== KEY_BYTES) throw new Error(`OPSC_MASTER_KEY must be ${KEY_BYTES} bytes encoded as base64 (several keys: comma-separated, the current one first)`)
    return key
  })
}

/** The keys in an existing key file (current first); undefined when there is no file. */
export function readKeyFileKeys(file: string): Buffer[] | undefined {
  const text = readKeyFile(file)
  return text === undefined ? undefined : parseKeyFile(text, file)
}

/**
 * A keyring that follows its key file. Another process may rotate the key (new key first, old keys
 * after) and re-wrap the database while this one runs: a stored row or token naming a key id we do
 * not know makes us re-read the file (rate-limited), and `current` follows the file within
 * `checkIntervalMs` (one stat), so new secrets get the new key before the old one is retired.
 * A file that cannot be read or parsed keeps the keys we have; starting again would report it.
 */
function fileKeyring(file: string, opts: ReloadOptions = {}): Keyring {
  const checkIntervalMs = opts.checkIntervalMs ?? DEFAULT_RELOAD.checkIntervalMs
  const unknownKeyRetryMs = opts.unknownKeyRetryMs ?? DEFAULT_RELOAD.unknownKeyRetryMs
  const now = opts.now ?? Date.now
  // Stamp before reading: a change in between is then seen at the next check.
  let stamp = fileStamp(file)
  let ring = createKeyring(parseKeyFile(readKeyFile(file) ?? '', file), file)
  let checkedAt = now()
  let missedAt = Number.NEGATIVE_INFINITY
  const reread = () => {
    try {
      const nextStamp = fileStamp(file)
      ring = createKeyring(parseKeyFile(readKeyFile(file) ?? '', file), file)
      stamp = nextStamp
    } catch {
      /* keep the keys we have */
    }
  }
  const check = () => {
    if (now() - checkedAt < checkIntervalMs) return
    checkedAt = now()
    if (fileStamp(file) !== stamp) reread()
  }
  return {
    get current() {
      check()
      return ring.current
    },
    get keys() {
      check()
      return ring.keys
    },
    source: file,
    byId(id) {
      check()
      const known = ring.byId(id)
      if (known || now() - missedAt < unknownKeyRetryMs) return known
      missedAt = now()
      reread()
      return ring.byId(id)
    },
  }
}

/** Changes whenever the file is replaced (rename gives a new inode) or rewritten. */
function fileStamp(file: string): string {
  try {
    const s = statSync(file, { bigint: true })
    return `${s.ino}:${s.mtimeNs}:${s.size}`
  } catch {
    return 'missing'
  }
}

/** The file's text, or undefined if it does not exist yet; refuses a file others can read. */
function readKeyFile(file: string): string | undefined {
  let fd: number
  try {
    fd = openSync(file, 'r')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Error(`master key file ${file}: cannot open (${(err as NodeJS.ErrnoException).code ?? 'error'})`, { cause: err })
  }
  try {
    // fstat on the open descriptor, so the checked file is the file we read.
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw new Error(`master key file ${file} is not a regular file`)
    if (process.platform !== 'win32' && (stat.mode & 0o077) !== 0) {
      const mode = (stat.mode & 0o777).toString(8).padStart(4, '0')
      throw new Error(`master key file ${file} is readable by group or others (mode ${mode}); run: chmod 600 ${file}`)
    }
    return readFileSync(fd, 'utf8')
  } finally {
    closeSync(fd)
  }
}

export function parseKeyFile(text: string, file: string): Buffer[] {
  const keys: Buffer[] = []
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim()
    if (line === '' || line.startsWith('#')) return
    const key = Buffer.from(line, 'base64')
    // Re-encoding catches stray characters that Buffer.from would silently skip; never echo the line.
    if (key.length !== KEY_BYTES || key.toString('base64') !== line) {
      throw new Error(`master key file ${file}, line ${i + 1}: expected ${KEY_BYTES} bytes encoded as base64 (44 characters)`)
    }
    keys.push(key)
  })
  if (keys.length === 0) throw new Error(`master key file ${file} holds no key`)
  return keys
}

/**
 * Writes a new key file without ever exposing a partial one: the key goes to a private temp file
 * (fsynced), which is then hard-linked into place. link() fails if the name exists, so two
 * processes starting at once cannot overwrite each other's key; the loser reads the winner's file.
 */
const KEY_FILE_HEADER =
  '# OpsConductor master key. Losing this file makes every stored credential unreadable: back it up.\n' +
  '# One base64 key per line; the first is current, later lines are older keys kept for decryption.\n'

function createKeyFile(file: string): string {
  const dir = path.dirname(file)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const text =
    KEY_FILE_HEADER + `${randomBytes(KEY_BYTES).toString('base64')}\n`
  const tmp = writePrivateTemp(dir, text)
  try {
    linkSync(tmp, file)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    const existing = readKeyFile(file)
    if (existing === undefined) throw err
    return existing
  } finally {
    rmSync(tmp, { force: true })
  }
  syncDir(dir)
  return text
}

/** A new 0600 file beside the key file, written and fsynced, to be linked or renamed into place. */
function writePrivateTemp(dir: string, text: string): string {
  const tmp = path.join(dir, `.${MASTER_KEY_FILE}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`)
  const fd = openSync(tmp, 'wx', 0o600)
  try {
    writeSync(fd, text)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  return tmp
}

/**
 * Replaces the key file atomically (rotation, retirement): the new content goes to a private temp
 * file (fsynced) that is renamed over the old one, so readers see the old file or the new one.
 */
export function replaceKeyFile(file: string, keys: readonly Buffer[], note: string): void {
  if (keys.length === 0) throw new Error(`${file}: refusing to write a key file without a key`)
  const dir = path.dirname(file)
  const text =
    KEY_FILE_HEADER +
    `# ${note.replace(/\n/g, ' ')}\n` +
    keys.map((k) => `${k.toString('base64')}\n`).join('')
  const tmp = writePrivateTemp(dir, text)
  try {
    renameSync(tmp, file)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
  syncDir(dir)
}

function syncDir(dir: string): void {
  // Makes the new directory entry durable; not supported on every platform (e.g. Windows).
  try {
    const fd = openSync(dir, 'r')
    try {
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
  } catch {
    /* best effort */
  }
}
