import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { inspect } from 'node:util'
import { createKeyring, loadMasterKeyring, MASTER_KEY_FILE, replaceKeyFile } from './master-key.ts'

const tempDir = () => mkdtempSync(path.join(tmpdir(), 'opsc-mk-'))
const posix = process.platform !== 'win32'
const writeKeyFile = (dir: string, text: string, mode = 0o600) => {
  const file = path.join(dir, MASTER_KEY_FILE)
  writeFileSync(file, text, { mode })
  chmodSync(file, mode)
  return file
}

test('creates a 0600 key file on first start and loads the same key afterwards', () => {
  const dataDir = tempDir()
  const first = loadMasterKeyring({ dataDir })
  const file = path.join(dataDir, MASTER_KEY_FILE)
  if (posix) assert.equal(statSync(file).mode & 0o777, 0o600)
  assert.equal(first.current.key.length, 32)
  assert.equal(first.source, file)
  const second = loadMasterKeyring({ dataDir })
  assert.equal(second.current.id, first.current.id)
  assert.ok(second.current.key.equals(first.current.key))
  assert.deepEqual(readdirSync(dataDir), [MASTER_KEY_FILE], 'no temp files are left behind')
})

test('creates the data dir if it does not exist yet', () => {
  const dataDir = path.join(tempDir(), 'nested', 'data')
  loadMasterKeyring({ dataDir })
  assert.ok(existsSync(path.join(dataDir, MASTER_KEY_FILE)))
})

test('uses OPSC_MASTER_KEY when given and neither reads nor creates a key file', () => {
  const dataDir = tempDir()
  writeKeyFile(dataDir, 'not a key\n', 0o644)
  const key = randomBytes(32)
  const keyring = loadMasterKeyring({ dataDir, envKey: key.toString('base64') })
  assert.ok(keyring.current.key.equals(key))
  assert.equal(keyring.source, 'OPSC_MASTER_KEY')

  const empty = tempDir()
  loadMasterKeyring({ dataDir: empty, envKey: key.toString('base64') })
  assert.deepEqual(readdirSync(empty), [])
})

test('the key id is the first 16 hex characters of SHA-256 of the key, and never the key', () => {
  const key = randomBytes(32)
  const keyring = loadMasterKeyring({ dataDir: tempDir(), envKey: key.toString('base64') })
  assert.equal(keyring.current.id, createHash('sha256').update(key).digest('hex').slice(0, 16))
  assert.equal(keyring.byId(keyring.current.id), keyring.current)
  assert.equal(keyring.byId('0000000000000000'), undefined)
})

test('keeps the key out of JSON and inspect output', () => {
  const key = randomBytes(32)
  const keyring = createKeyring([key])
  for (const shown of [JSON.stringify(keyring), inspect(keyring, { depth: 5 }), JSON.stringify(keyring.current)]) {
    assert.ok(!shown.includes(key.toString('base64')) && !shown.includes(key.toString('hex')), shown)
    assert.ok(shown.includes(keyring.current.id))
  }
})

test('refuses a key file that group or others can read, naming the file', { skip: !posix }, () => {
  const dataDir = tempDir()
  const file = writeKeyFile(dataDir, `${randomBytes(32).toString('base64')}\n`, 0o640)
  assert.throws(() => loadMasterKeyring({ dataDir }), (err: Error) => err.message.includes(file) && /readable by group or others \(mode 0640\)/.test(err.message))
  chmodSync(file, 0o604)
  assert.throws(() => loadMasterKeyring({ dataDir }), /readable by group or others/)
})

test('refuses a key of the wrong length or encoding, naming the file and line but not the content', () => {
  const dataDir = tempDir()
  const short = randomBytes(16).toString('base64')
  const file = writeKeyFile(dataDir, `# comment\n${short}\n`)
  assert.throws(
    () => loadMasterKeyring({ dataDir }),
    (err: Error) => err.message.includes(file) && err.message.includes('line 2') && !err.message.includes(short),
  )
  writeKeyFile(dataDir, `${randomBytes(32).toString('base64')}!!\n`)
  assert.throws(() => loadMasterKeyring({ dataDir }), /line 1: expected 32 bytes/)
  writeKeyFile(dataDir, '# only a comment\n\n')
  assert.throws(() => loadMasterKeyring({ dataDir }), /holds no key/)
  writeKeyFile(dataDir, '')
  assert.throws(() => loadMasterKeyring({ dataDir }), /holds no key/)
})

test('reads several keys from the file: the first is current, the rest still unwrap', () => {
  const dataDir = tempDir()
  const [newer, older] = [randomBytes(32), randomBytes(32)]
  writeKeyFile(dataDir, `# rotated\r\n${newer.toString('base64')}\r\n\r\n${older.toString('base64')}\r\n`)
  const keyring = loadMasterKeyring({ dataDir })
  assert.ok(keyring.current.key.equals(newer))
  assert.deepEqual(keyring.keys.map((k) => k.id), [keyring.current.id, createKeyring([older]).current.id])
  assert.ok(keyring.byId(keyring.keys[1]!.id)!.key.equals(older))
})

test('rejects the same key listed twice', () => {
  const dataDir = tempDir()
  const key = randomBytes(32).toString('base64')
  writeKeyFile(dataDir, `${key}\n${key}\n`)
  assert.throws(() => loadMasterKeyring({ dataDir }), /listed twice/)
})

test('the generated file documents itself and holds exactly one key', () => {
  const dataDir = tempDir()
  const keyring = loadMasterKeyring({ dataDir })
  const lines = readFileSync(path.join(dataDir, MASTER_KEY_FILE), 'utf8').split('\n').filter((l) => l && !l.startsWith('#'))
  assert.deepEqual(lines, [keyring.current.key.toString('base64')])
})

test('processes starting at once on an empty data dir all end up with the same key', async () => {
  const dataDir = tempDir()
  const module = new URL('./master-key.ts', import.meta.url).href
  const script = `import { loadMasterKeyring } from ${JSON.stringify(module)}; console.log(loadMasterKeyring({ dataDir: ${JSON.stringify(dataDir)} }).current.id)`
  const run = () =>
    new Promise<string>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      child.stdout.on('data', (d: Buffer) => (out += d.toString()))
      child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`exit ${code}`))))
    })
  const ids = await Promise.all(Array.from({ length: 4 }, run))
  assert.equal(new Set(ids).size, 1)
  assert.equal(ids[0], loadMasterKeyring({ dataDir }).current.id)
})

test('OPSC_MASTER_KEY takes several comma-separated keys: the first is current, all unwrap', () => {
  const [newer, older] = [randomBytes(32), randomBytes(32)]
  const keyring = loadMasterKeyring({ dataDir: tempDir(), envKey: ` ${newer.toString('base64')} ,${older.toString('base64')}` })
  assert.ok(keyring.current.key.equals(newer))
  assert.deepEqual(keyring.keys.map((k) => k.id), [createKeyring([newer]).current.id, createKeyring([older]).current.id])
  assert.throws(() => loadMasterKeyring({ dataDir: tempDir(), envKey: `${newer.toString('base64')},c2hvcnQ=` }), /OPSC_MASTER_KEY must be 32 bytes/)
})

test('replaceKeyFile swaps the file atomically, 0600, without leaving temp files', () => {
  const dataDir = tempDir()
  const first = loadMasterKeyring({ dataDir })
  const fresh = randomBytes(32)
  replaceKeyFile(path.join(dataDir, MASTER_KEY_FILE), [fresh, first.current.key], 'rotated in a test')
  if (posix) assert.equal(statSync(path.join(dataDir, MASTER_KEY_FILE)).mode & 0o777, 0o600)
  assert.deepEqual(readdirSync(dataDir), [MASTER_KEY_FILE])
  const again = loadMasterKeyring({ dataDir })
  assert.deepEqual(again.keys.map((k) => k.id), [createKeyring([fresh]).current.id, first.current.id])
})

test('a key-file keyring re-reads the file for an unknown key id, at most once per retry interval', () => {
  const dataDir = tempDir()
  let clock = 0
  const keyring = loadMasterKeyring({ dataDir, reload: { now: () => clock, checkIntervalMs: 60_000, unknownKeyRetryMs: 1000 } })
  const old = keyring.current
  const fresh = randomBytes(32)
  const freshId = createKeyring([fresh]).current.id
  assert.equal(keyring.byId('0000000000000000'), undefined, 'a miss before the rotation uses up the retry window')
  replaceKeyFile(path.join(dataDir, MASTER_KEY_FILE), [fresh, old.key], 'rotated by another process')
  assert.equal(keyring.byId(freshId), undefined, 'no re-read within the retry interval')
  clock += 1000
  assert.ok(keyring.byId(freshId)?.key.equals(fresh), 'the new key is found after re-reading')
  assert.equal(keyring.current.id, freshId, 'and it is current from now on')
  assert.equal(keyring.byId(old.id)?.id, old.id, 'the old key still unwraps')
})

test('a key-file keyring follows a rotated file within the check interval, and keeps its keys when the file is broken', () => {
  const dataDir = tempDir()
  const file = path.join(dataDir, MASTER_KEY_FILE)
  let clock = 0
  const keyring = loadMasterKeyring({ dataDir, reload: { now: () => clock, checkIntervalMs: 5000 } })
  const old = keyring.current
  const fresh = randomBytes(32)
  replaceKeyFile(file, [fresh, old.key], 'rotated')
  clock += 4999
  assert.equal(keyring.current.id, old.id)
  clock += 1
  assert.ok(keyring.current.key.equals(fresh))
  writeKeyFile(dataDir, 'garbage\n')
  clock += 5000
  assert.ok(keyring.current.key.equals(fresh), 'a broken file does not take the keys away')
  assert.equal(keyring.byId('0123456789abcdef'), undefined)
})
