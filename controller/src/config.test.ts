import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { test } from 'node:test'
import { ConfigError, loadConfig } from './config.ts'

test('applies the documented defaults', () => {
  const cfg = loadConfig({})
  assert.equal(cfg.OPSC_HTTP_PORT, 8443)
  assert.equal(cfg.OPSC_GRPC_PORT, 8444)
  assert.equal(cfg.OPSC_BIND, '0.0.0.0')
  assert.equal(cfg.OPSC_DATA_DIR, path.resolve('./data'))
  assert.equal(cfg.DATABASE_URL, undefined)
  assert.equal(cfg.OPSC_LOG_LEVEL, 'info')
})

test('rejects a non-numeric port with a message naming the variable', () => {
  assert.throws(() => loadConfig({ OPSC_HTTP_PORT: 'abc' }), (err: unknown) => {
    assert.ok(err instanceof ConfigError)
    assert.match(err.message, /^OPSC_HTTP_PORT must be a port number/)
    assert.match(err.message, /"abc"/)
    return true
  })
  assert.throws(() => loadConfig({ OPSC_GRPC_PORT: '70000' }), { message: /^OPSC_GRPC_PORT/ })
  assert.throws(() => loadConfig({ OPSC_GRPC_PORT: '-1' }), { message: /^OPSC_GRPC_PORT/ })
})

test('rejects an unknown log level, a non-postgres URL and a short master key', () => {
  assert.throws(() => loadConfig({ OPSC_LOG_LEVEL: 'loud' }), { message: /^OPSC_LOG_LEVEL must be one of/ })
  assert.throws(() => loadConfig({ DATABASE_URL: 'mysql://x' }), { message: /^DATABASE_URL must be a postgres/ })
  assert.throws(() => loadConfig({ OPSC_MASTER_KEY: 'c2hvcnQ=' }), { message: /^OPSC_MASTER_KEY must be 32 bytes/ })
})

test('requires the TLS certificate and key together and distinct ports', () => {
  assert.throws(() => loadConfig({ OPSC_TLS_CERT: '/x.crt' }), { message: /OPSC_TLS_CERT and OPSC_TLS_KEY must be set together/ })
  assert.throws(() => loadConfig({ OPSC_HTTP_PORT: '9000', OPSC_GRPC_PORT: '9000' }), { message: /^OPSC_GRPC_PORT: OPSC_HTTP_PORT and OPSC_GRPC_PORT must differ/ })
})

test('reads a JSON config file and lets the environment override it', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-cfg-'))
  const file = path.join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({ OPSC_HTTP_PORT: 9443, OPSC_LOG_LEVEL: 'debug' }))
  const cfg = loadConfig({ OPSC_CONFIG_FILE: file, OPSC_LOG_LEVEL: 'warn' })
  assert.equal(cfg.OPSC_HTTP_PORT, 9443)
  assert.equal(cfg.OPSC_LOG_LEVEL, 'warn')
  writeFileSync(file, JSON.stringify({ OPSC_NOPE: 1 }))
  assert.throws(() => loadConfig({ OPSC_CONFIG_FILE: file }), { message: /unknown setting OPSC_NOPE/ })
  writeFileSync(file, '{not json')
  assert.throws(() => loadConfig({ OPSC_CONFIG_FILE: file }), { message: /not valid JSON/ })
})

test('reads secrets from *_FILE variables', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'opsc-cfg-'))
  const file = path.join(dir, 'key')
  const key = Buffer.alloc(32, 7).toString('base64')
  writeFileSync(file, key + '\n')
  assert.equal(loadConfig({ OPSC_MASTER_KEY_FILE: file }).OPSC_MASTER_KEY, key)
  assert.throws(() => loadConfig({ OPSC_MASTER_KEY_FILE: path.join(dir, 'missing') }), { message: /OPSC_MASTER_KEY_FILE: cannot read/ })
})
