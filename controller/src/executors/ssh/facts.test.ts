import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import os from 'node:os'
import { after, before, describe, test } from 'node:test'
import { sshdUnavailable } from '../../../../test/harness/sshd.ts'
import { resolveCredential } from '../testing.ts'
import { collectSshFacts, connectSsh } from './index.ts'
import { parseFacts } from './facts.ts'
import { sshFixture, type SshFixture } from './test-fixture.ts'

const skip = sshdUnavailable()

test('parses os-release, uname, meminfo, df and uptime sections', () => {
  const out = [
    '@@uname', 'Linux', '6.1.0-18-amd64', 'x86_64',
    '@@os-release', 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"', 'NAME="Debian GNU/Linux"', 'VERSION_ID="12"',
    '@@hostname', 'web-1',
    '@@nproc', '4',
    '@@meminfo', 'MemTotal:        8000000 kB', 'MemFree:  1 kB',
    '@@df', 'Filesystem 1-blocks Used Available Capacity Mounted on', '/dev/sda1 100 40 60 40% /', '/dev/sdb1 200 0 200 0% /mnt/my data',
    '@@uptime', '12345.67 999.00',
    '',
  ].join('\n')
  assert.deepEqual(parseFacts(out), {
    os_name: 'Debian GNU/Linux',
    os_version: '12',
    os_pretty_name: 'Debian GNU/Linux 12 (bookworm)',
    kernel: '6.1.0-18-amd64',
    kernel_name: 'Linux',
    arch: 'x86_64',
    cpu_count: 4,
    memory_bytes: 8000000 * 1024,
    disks: [{ mount: '/', size_bytes: 100, free_bytes: 60 }, { mount: '/mnt/my data', size_bytes: 200, free_bytes: 200 }],
    uptime_sec: 12345,
    hostname: 'web-1',
  })
})

describe('collectSshFacts against a real sshd', { skip }, () => {
  let f: SshFixture
  before(async () => {
    f = await sshFixture()
  })
  after(async () => {
    await f?.close()
  })

  test('reports this host’s OS, kernel, CPUs, memory, disks, uptime and name in one command', async () => {
    const target = await f.target()
    const conn = await connectSsh(target, { ctx: f.tc.ctx, log: f.tc.ctx.log, credential: (ref) => resolveCredential(f.tc.ctx, ref) })
    const before = f.sshd.log().match(/Starting session: command/g)?.length ?? 0
    let facts: Record<string, unknown>
    try {
      facts = await collectSshFacts(conn)
    } finally {
      conn.close()
    }
    // sshd runs on this machine, so the facts are this machine's.
    assert.equal(facts.kernel, os.release())
    assert.equal(facts.arch, execFileSync('uname', ['-m'], { encoding: 'utf8' }).trim())
    assert.equal(facts.hostname, os.hostname())
    assert.equal(facts.cpu_count, Number(execFileSync('nproc', { encoding: 'utf8' }).trim()))
    assert.equal(facts.memory_bytes, os.totalmem())
    assert.equal(typeof facts.os_name, 'string')
    assert.equal(typeof facts.uptime_sec, 'number')
    assert.ok((facts.uptime_sec as number) >= 0)
    const disks = facts.disks as { mount: string; size_bytes: number; free_bytes: number }[]
    assert.ok(disks.some((d) => d.mount === '/' && d.size_bytes > 0 && d.free_bytes >= 0 && d.free_bytes <= d.size_bytes), JSON.stringify(disks))
    const after = f.sshd.log().match(/Starting session: command/g)?.length ?? 0
    assert.equal(after - before, 1, 'one command')
  })
})
