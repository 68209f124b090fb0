import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, test } from 'node:test'
import { pathToFileURL } from 'node:url'
import { Journal, JournalError } from './journal.ts'

const roots: string[] = []
const tempDir = () => {
  roots.push(mkdtempSync(path.join(tmpdir(), 'opsc-journal-')))
  return path.join(roots.at(-1)!, 'journal')
}
after(() => {
  for (const root of roots) rmSync(root, { recursive: true, force: true })
})
const HOUR = 3_600_000
const meta = (expiresAtUnixMs = Date.now() + HOUR) => ({ runId: 'run-1', stepId: 'step-1', expiresAtUnixMs })

test('a begun assignment is known, and beginning it again throws', () => {
  const j = Journal.open(tempDir())
  assert.equal(j.has('a1'), false)
  j.begin('a1', meta())
  assert.equal(j.has('a1'), true)
  assert.throws(() => j.begin('a1', meta()), JournalError)
  j.close()
})

test('creates the directory and file readable only by the owner', { skip: process.platform === 'win32' }, () => {
  const dir = tempDir()
  Journal.open(dir).close()
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  assert.equal(statSync(path.join(dir, 'journal.log')).mode & 0o777, 0o600)
})

test('refuses a replay after the journal is reopened', () => {
  const dir = tempDir()
  const j = Journal.open(dir)
  j.begin('a1', meta())
  j.finish('a1')
  j.close()
  const reopened = Journal.open(dir)
  assert.equal(reopened.has('a1'), true)
  assert.throws(() => reopened.begin('a1', meta()), /already journaled/)
  reopened.close()
})

test('lists assignments begun but not finished before a restart as interrupted, in begin order', () => {
  const dir = tempDir()
  const j = Journal.open(dir)
  j.begin('a1', meta())
  j.begin('a2', meta())
  j.begin('a3', meta())
  j.finish('a2')
  // no close: the process "dies" here
  const reopened = Journal.open(dir)
  assert.deepEqual(reopened.interrupted(), ['a1', 'a3'])
  // interrupted() is what was running at the crash, not what is running now
  reopened.finish('a1')
  reopened.begin('a4', meta())
  assert.deepEqual(reopened.interrupted(), ['a1', 'a3'])
  reopened.close()
  assert.deepEqual(Journal.open(dir).interrupted(), ['a3', 'a4'])
})

test('finishing an unknown assignment throws; finishing twice does not', () => {
  const j = Journal.open(tempDir())
  assert.throws(() => j.finish('nope'), JournalError)
  j.begin('a1', meta())
  j.finish('a1')
  j.finish('a1')
  j.close()
})

test('ignores and cuts off a torn last record, and later appends are replayed', () => {
  const dir = tempDir()
  const file = path.join(dir, 'journal.log')
  const j = Journal.open(dir)
  j.begin('a1', meta())
  const intact = statSync(file).size
  j.begin('a2', meta())
  j.close()
  truncateSync(file, statSync(file).size - 5) // a crash in the middle of writing a2
  const torn = Journal.open(dir)
  assert.equal(torn.has('a1'), true)
  assert.equal(torn.has('a2'), false)
  assert.equal(statSync(file).size, intact)
  torn.begin('a3', meta())
  torn.close()
  const again = Journal.open(dir)
  assert.deepEqual(again.interrupted(), ['a1', 'a3'])
  again.close()
})

test('ignores a zero-filled tail (file size grew but the data never reached the disk)', () => {
  const dir = tempDir()
  const j = Journal.open(dir)
  j.begin('a1', meta())
  j.close()
  appendFileSync(path.join(dir, 'journal.log'), Buffer.alloc(64))
  const reopened = Journal.open(dir)
  assert.deepEqual(reopened.interrupted(), ['a1'])
  reopened.begin('a2', meta())
  reopened.close()
  assert.deepEqual(Journal.open(dir).interrupted(), ['a1', 'a2'])
})

test('compaction keeps unexpired and unfinished ids and forgets expired finished ones', () => {
  const dir = tempDir()
  const file = path.join(dir, 'journal.log')
  let now = Date.now()
  const j = Journal.open(dir, { compactAtBytes: 4096, now: () => now })
  j.begin('expired-finished', meta(now - 11 * 60_000))
  j.finish('expired-finished')
  j.begin('expired-running', meta(now - 11 * 60_000))
  j.begin('within-margin', meta(now - 5 * 60_000))
  j.finish('within-margin')
  j.begin('unexpired', meta(now + HOUR))
  j.finish('unexpired')
  for (let i = 0; i < 200; i++) {
    j.begin(`filler-${i}`, meta(now - HOUR))
    j.finish(`filler-${i}`)
  }
  // a compaction ran along the way, so the file holds far less than 200 ids
  assert.ok(statSync(file).size < 8192, `journal is ${statSync(file).size} bytes`)
  assert.equal(j.has('expired-finished'), false)
  assert.equal(j.has('filler-0'), false)
  for (const id of ['expired-running', 'within-margin', 'unexpired']) assert.equal(j.has(id), true, id)
  j.close()

  const reopened = Journal.open(dir, { compactAtBytes: 4096, now: () => now })
  assert.equal(reopened.has('expired-finished'), false)
  for (const id of ['expired-running', 'within-margin', 'unexpired']) assert.equal(reopened.has(id), true, id)
  assert.deepEqual(reopened.interrupted(), ['expired-running'])
  reopened.close()

  now += 2 * HOUR // everything finished is now past its expiry and margin
  const later = Journal.open(dir, { compactAtBytes: 1, now: () => now })
  assert.equal(later.has('unexpired'), false)
  assert.equal(later.has('expired-running'), true) // unfinished ids are never forgotten
  later.close()
})

test('a begin survives the process being killed right after it returns', async () => {
  const dir = tempDir()
  const script = path.join(path.dirname(dir), 'begin-and-die.ts')
  writeFileSync(
    script,
    `import { Journal } from ${JSON.stringify(pathToFileURL(path.resolve('agent/src/journal.ts')).href)}\n` +
      `const j = Journal.open(${JSON.stringify(dir)})\n` +
      `j.begin('killed-1', { runId: 'r', stepId: 's', expiresAtUnixMs: Date.now() + 3600000 })\n` +
      `process.kill(process.pid, 'SIGKILL')\n`,
  )
  const child = spawn(process.execPath, ['--import', 'tsx', script], { stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d) => (stderr += d))
  const signal = await new Promise((resolve) => child.on('exit', (_code, sig) => resolve(sig)))
  assert.equal(signal, 'SIGKILL', stderr)
  const j = Journal.open(dir)
  assert.equal(j.has('killed-1'), true)
  assert.deepEqual(j.interrupted(), ['killed-1'])
  j.close()
  assert.ok(readFileSync(path.join(dir, 'journal.log')).length > 0)
})
