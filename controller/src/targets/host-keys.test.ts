import assert from 'node:assert/strict'
import { test } from 'node:test'
import { decideHostKey, openSshFingerprint } from './host-keys.ts'

test('fingerprints match OpenSSH (ssh-keygen -lf) format', () => {
  // `ssh-keygen -lf` prints SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU for this ed25519 key.
  const blob = Buffer.from('AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl', 'base64')
  assert.equal(openSshFingerprint(blob), 'SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU')
})

test('strict accepts only trusted keys and queues unknown ones for approval', () => {
  assert.deepEqual(decideHostKey('strict', [], 'SHA256:a'), { accept: false, reason: 'unknown_key', record: 'pending' })
  assert.deepEqual(decideHostKey('strict', [{ fingerprint: 'SHA256:a', status: 'pending' }], 'SHA256:a'), { accept: false, reason: 'unknown_key', record: 'none' })
  assert.deepEqual(decideHostKey('strict', [{ fingerprint: 'SHA256:a', status: 'trusted' }], 'SHA256:a'), { accept: true, record: 'none' })
})

test('tofu trusts the first key and refuses a changed one', () => {
  assert.deepEqual(decideHostKey('tofu', [], 'SHA256:a'), { accept: true, record: 'trust' })
  assert.deepEqual(decideHostKey('tofu', [{ fingerprint: 'SHA256:a', status: 'trusted' }], 'SHA256:a'), { accept: true, record: 'none' })
  assert.deepEqual(decideHostKey('tofu', [{ fingerprint: 'SHA256:a', status: 'trusted' }], 'SHA256:b'), { accept: false, reason: 'changed_key', record: 'pending' })
  assert.deepEqual(decideHostKey('tofu', [{ fingerprint: 'SHA256:a', status: 'revoked' }], 'SHA256:a'), { accept: false, reason: 'revoked_key', record: 'none' })
})

test('off accepts anything and records nothing', () => {
  assert.deepEqual(decideHostKey('off', [{ fingerprint: 'SHA256:a', status: 'revoked' }], 'SHA256:a'), { accept: true, record: 'none' })
})
