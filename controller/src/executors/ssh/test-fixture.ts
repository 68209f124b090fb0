import { randomBytes } from 'node:crypto'
import { createTestContext, type TestContext } from '../../../../test/harness/context.ts'
import { startSshd, type SshdOptions, type TestSshd } from '../../../../test/harness/sshd.ts'
import { createCredential } from '../../credentials/service.ts'
import { createTarget, getTargetRow } from '../../targets/service.ts'
import type { TargetRow } from '../../targets/targets.sql.ts'
import { executionContext, type TestExecution } from '../testing.ts'
import type { ExecutionContext } from '../types.ts'
import { closeSshPool } from './pool.ts'

/** For the SSH executor tests: a real sshd, a real database, and real credentials and targets on both. */

export interface SshFixture {
  sshd: TestSshd
  tc: TestContext
  creds: { password: string; ed25519: string; rsa: string; ecdsa: string }
  /** `credential`: one of `creds`, null for none, or any credential id. */
  target(opts?: { credential?: keyof SshFixture['creds'] | null | { id: string }; policy?: 'strict' | 'tofu' | 'off'; port?: number; address?: string; jump?: { target_id: string; credential_id: string | null }[]; osType?: 'linux' | 'windows' }): Promise<TargetRow>
  /** An ExecutionContext for `target` that also records what the executor `remember`s. */
  exec(target: TargetRow, overrides?: Partial<ExecutionContext>): TestExecution & { handles: Record<string, unknown>[] }
  close(): Promise<void>
}

/** `env`: controller settings for the test's context (e.g. OPSC_SSH_MAX_HANDSHAKES). */
export async function sshFixture(opts: SshdOptions & { env?: Record<string, string> } = {}): Promise<SshFixture> {
  const { env, ...sshdOpts } = opts
  const sshd = await startSshd(sshdOpts)
  const tc = await createTestContext({ env })
  const { ctx } = tc
  const username = sshd.user
  const creds = {
    password: (await createCredential(ctx, undefined, { type: 'ssh_password', name: 'ssh-password', username, password: sshd.password })).id,
    ed25519: (await createCredential(ctx, undefined, { type: 'ssh_key', name: 'ssh-ed25519', username, private_key: sshd.keys.ed25519.privateKey })).id,
    rsa: (await createCredential(ctx, undefined, { type: 'ssh_key', name: 'ssh-rsa-passphrase', username, private_key: sshd.keys.rsaWithPassphrase.privateKey, passphrase: sshd.keys.rsaWithPassphrase.passphrase })).id,
    ecdsa: (await createCredential(ctx, undefined, { type: 'ssh_key', name: 'ssh-ecdsa', username, private_key: sshd.keys.ecdsa.privateKey })).id,
  }
  return {
    sshd,
    tc,
    creds,
    async target(opts = {}) {
      const cred = opts.credential === undefined ? 'password' : opts.credential
      const dto = await createTarget(ctx, {
        name: `ssh-${randomBytes(4).toString('hex')}`,
        address: opts.address ?? sshd.host,
        os_type: opts.osType ?? 'linux',
        enabled: true,
        tags: {},
        connection: { type: 'ssh', port: opts.port ?? sshd.port, credential_id: cred === null ? null : typeof cred === 'object' ? cred.id : creds[cred], host_key_policy: opts.policy ?? 'tofu', jump: opts.jump ?? [] },
      })
      return getTargetRow(ctx.db, dto.id)
    },
    exec(target, overrides = {}) {
      const handles: Record<string, unknown>[] = []
      const x = executionContext(ctx, { target, remember: (h) => handles.push(h), ...overrides })
      return Object.assign(x, { handles })
    },
    async close() {
      closeSshPool(ctx)
      await tc.close()
      await sshd.stop()
    },
  }
}
