import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { hasSshKeygen, generateSshKey } from '../../../../test/harness/keys.ts'
import { ExecInput } from '../exec-input.ts'
import { markerPrefix, MarkerScanner, posixCommand, powershellCommand, shQuote } from './command.ts'
import { unlockPrivateKey } from './keys.ts'
import { ssh2 } from './ssh2.ts'

const sh = (script: string, input?: string) => spawnSync('/bin/sh', ['-c', script], { encoding: 'utf8', input: input ?? '' })

test('shQuote survives the shell unchanged, whatever the bytes', () => {
  for (const value of [`it's`, `$(id) \`id\` $HOME`, `a\nb`, `'"'"'`, ' ', '-n', '\\\\', '*?[a]']) {
    assert.equal(sh(`printf %s ${shQuote(value)}`).stdout, value)
  }
})

test('the wrapper prints its pid first, then runs the command with env and cwd', () => {
  const cmd = posixCommand(ExecInput.parse({ command: 'printf "%s %s " "$A" "$(pwd)"; cat', env: { A: `x'y $B` }, cwd: '/tmp', stdin: 'ignored' }), 'sh', 'abc123')
  const res = sh(cmd, 'from stdin')
  assert.equal(res.status, 0)
  assert.equal(res.stdout, `x'y $B /tmp from stdin`)
  const m = new RegExp(`^${markerPrefix('abc123')}(\\d+)\\n$`).exec(res.stderr)
  assert.ok(m, res.stderr)
})

test('the wrapper names a shell that is not installed', () => {
  const cmd = posixCommand(ExecInput.parse({ command: 'true' }), 'zsh', 'n')
  const res = spawnSync('/bin/sh', ['-c', cmd], { encoding: 'utf8', env: { PATH: '/nonexistent' } })
  assert.equal(res.status, 127)
  assert.match(res.stderr, /shell zsh is not installed on this host/)
})

test('the marker scanner strips the marker across chunk boundaries and keeps what came before', () => {
  const s = new MarkerScanner('n0')
  const text = `motd noise\n${markerPrefix('n0')}4242\nreal output`
  const out: Buffer[] = []
  for (let i = 0; i < text.length; i += 3) out.push(s.feed(Buffer.from(text.slice(i, i + 3))))
  assert.equal(s.pgid, 4242)
  assert.equal(Buffer.concat(out).toString(), 'motd noise\nreal output')
  assert.equal(s.feed(Buffer.from('more')).toString(), 'more')
})

test('the marker scanner accepts a pty line ending and gives up after its limit', () => {
  const pty = new MarkerScanner('n1')
  assert.equal(pty.feed(Buffer.from(`${markerPrefix('n1')}7\r\nout`)).toString(), 'out')
  assert.equal(pty.pgid, 7)
  const none = new MarkerScanner('n2', 10)
  assert.equal(none.feed(Buffer.from('12345')).length, 0)
  assert.equal(none.feed(Buffer.from('678901')).toString(), '12345678901')
  assert.equal(none.pgid, undefined)
  assert.equal(none.settled, true)
})

test('powershell commands travel base64-encoded, values quoted', () => {
  const cmd = powershellCommand(ExecInput.parse({ command: 'Get-Date', env: { A: "it's" }, cwd: 'C:\\Temp' }), 'pwsh')
  const [, encoded] = /-EncodedCommand (\S+)$/.exec(cmd)!
  assert.equal(Buffer.from(encoded!, 'base64').toString('utf16le'), "$env:A = 'it''s'\nSet-Location -LiteralPath 'C:\\Temp'\nGet-Date\nexit $LASTEXITCODE")
})

test('unlockPrivateKey hands back the same key, readable by ssh2 without a passphrase', { skip: !hasSshKeygen }, async () => {
  for (const [type, opts] of [['ed25519', {}], ['ecdsa', {}], ['rsa', { bits: 2048 }], ['rsa', { bits: 2048, pem: true }]] as const) {
    const key = generateSshKey(type, { ...opts, passphrase: 'pass phrase' })
    const unlocked = await unlockPrivateKey(key.privateKey, 'pass phrase')
    const parsed = ssh2.utils.parseKey(unlocked)
    assert.ok(!(parsed instanceof Error) && !Array.isArray(parsed), `${type}: ${String(parsed)}`)
    assert.ok(parsed.isPrivateKey())
    assert.equal(parsed.getPublicSSH().toString('base64'), key.publicKey.split(' ')[1], type)
  }
  await assert.rejects(unlockPrivateKey(generateSshKey('ed25519', { passphrase: 'right' }).privateKey, 'wrong'), /passphrase does not open/)
})
