import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { DataDirLockedError, lockDataDir } from './data-dir.ts'

const tempDir = () => mkdtempSync(path.join(tmpdir(), 'opsc-lock-'))

test('refuses a data dir held by another live process', async () => {
  const dir = tempDir()
  const holder = spawn('sleep', ['30'])
  try {
    writeFileSync(path.join(dir, 'controller.lock'), String(holder.pid))
    assert.throws(() => lockDataDir(dir), (err: Error) => {
      assert.ok(err instanceof DataDirLockedError)
      assert.match(err.message, new RegExp(`^OPSC_DATA_DIR: .* is in use by another controller \\(pid ${holder.pid}\\)`))
      return true
    })
  } finally {
    holder.kill()
  }
})

test('takes over a lock left by a dead process and releases it', () => {
  const dir = tempDir()
  writeFileSync(path.join(dir, 'controller.lock'), '999999999')
  const release = lockDataDir(dir)
  assert.ok(existsSync(path.join(dir, 'controller.lock')))
  release()
  assert.ok(!existsSync(path.join(dir, 'controller.lock')))
})
