import assert from 'node:assert/strict'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdtempSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import { after, before, describe, test } from 'node:test'
import { eq, sql } from 'drizzle-orm'
import { createTestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { totpAad } from '../auth/mfa.ts'
import { ConfigError, loadConfig } from '../config.ts'
import type { AppContext } from '../context.ts'
import { createCredential, openCredential } from '../credentials/service.ts'
import { CreateCredentialInput } from '../credentials/types.ts'
import { parseWith } from '../http/validate.ts'
import { activeSigningKeys, ensureSigningKey } from '../agents/signing-keys.ts'
import { appUser } from '../users/users.sql.ts'
import { createJob } from '../jobs/service.ts'
import { run, runParamsAad } from '../runs/runs.sql.ts'
import { verifyMasterKey } from './key-check.ts'
import { createKeyring, loadMasterKeyring, MASTER_KEY_FILE, type Keyring } from './master-key.ts'
import { keysRetireCommand, keysRotateCommand, retireOldKeys, rotateMasterKey } from './rotate.ts'
import { countSealedByKey } from './sealed-columns.ts'
import { openSecret, sealSecret, type SealedSecret } from './secret-box.ts'
import { notificationChannel } from '../notify/notify.sql.ts'
import { channelAad } from '../notify/channels-service.ts'
import { SMTP_PASSWORD_AAD, SMTP_PASSWORD_SETTING } from '../notify/smtp-settings.ts'
import { setting } from '../settings/settings.sql.ts'

let t: TestContext
before(async () => {
  t = await createTestContext()
})
after(() => t.close())

const tempDir = () => mkdtempSync(path.join(tmpdir(), 'opsc-rotate-'))
const withKeyring = (keyring: Keyring): AppContext => ({ ...t.ctx, keyring })
const TOTP = 'JBSWY3DPEHPK3PXP'

type Seeded = { credentialIds: string[]; userId: string; runId: string; channelId: string }

async function seed(ctx: AppContext, prefix: string): Promise<Seeded> {
  const bodies = [
    { name: `${prefix}-pw`, type: 'ssh_password', username: 'root', password: `${prefix} password` },
    { name: `${prefix}-db`, type: 'database', driver: 'postgres', host: 'db', database: 'app', username: 'app', password: `${prefix} db password` },
    { name: `${prefix}-snmp`, type: 'snmp', version: 'v2c', community: `${prefix} community` },
  ]
  const credentialIds: string[] = []
  for (const body of bodies) credentialIds.push((await createCredential(ctx, undefined, parseWith(CreateCredentialInput, body))).id)
  const { user } = await createTestUser(ctx, 'operator')
  await ctx.db
    .update(appUser)
    .set({ totpSecret: sealSecret(ctx.keyring, TOTP, totpAad(user.id)), totpPendingSecret: sealSecret(ctx.keyring, TOTP, totpAad(user.id)) })
    .where(eq(appUser.id, user.id))
  // A run with a secret parameter: sealed with the run id bound in.
  const job = await createJob(ctx, undefined, { name: `rotate-${prefix}`, parameters: [{ name: 'pw', type: 'secret' }], steps: [{ type: 'wait', seconds: 1 }] })
  const runId = randomUUID()
  await ctx.db.insert(run).values({ id: runId, jobId: job.id, jobVersion: 1, jobName: job.name, status: 'succeeded', parameters: { pw: '****' }, secretParams: sealSecret(ctx.keyring, JSON.stringify({ pw: 'hunter22' }), runParamsAad(runId)), trigger: 'manual', createdAt: new Date() })
  // A notification channel's secret and the SMTP password.
  const channelId = randomUUID()
  await ctx.db.insert(notificationChannel).values({ id: channelId, name: `${prefix}-hook`, type: 'webhook', config: {}, secret: sealSecret(ctx.keyring, `${prefix} hook secret`, channelAad(channelId)) })
  await ctx.db.insert(setting).values({ key: SMTP_PASSWORD_SETTING, value: sealSecret(ctx.keyring, `${prefix} smtp password`, SMTP_PASSWORD_AAD) })
  return { credentialIds, userId: user.id, runId, channelId }
}

async function assertAllOpen(ctx: AppContext, seeded: Seeded): Promise<void> {
  const [channel] = await ctx.db.select().from(notificationChannel).where(eq(notificationChannel.id, seeded.channelId))
  assert.match(openSecret(ctx.keyring, channel!.secret!, channelAad(seeded.channelId)).toString(), /hook secret$/)
  const [smtp] = await ctx.db.select().from(setting).where(eq(setting.key, SMTP_PASSWORD_SETTING))
  assert.match(openSecret(ctx.keyring, smtp!.value as SealedSecret, SMTP_PASSWORD_AAD).toString(), /smtp password$/)
  const [r] = await ctx.db.select().from(run).where(eq(run.id, seeded.runId))
  assert.equal(openSecret(ctx.keyring, r!.secretParams!, runParamsAad(seeded.runId)).toString(), '{"pw":"hunter22"}')
  for (const id of seeded.credentialIds) assert.ok(JSON.stringify(await openCredential(ctx, id)).includes('"name"'))
  const [user] = await ctx.db.select().from(appUser).where(eq(appUser.id, seeded.userId))
  assert.equal(openSecret(ctx.keyring, user!.totpSecret!, totpAad(seeded.userId)).toString(), TOTP)
  assert.equal(openSecret(ctx.keyring, user!.totpPendingSecret!, totpAad(seeded.userId)).toString(), TOTP)
}

const kidsInUse = async (ctx: AppContext) => [...new Set((await countSealedByKey(ctx.db)).map((c) => c.kid))]

describe('key-file rotation', () => {
  test('rotate re-wraps every sealed value to a new key; a controller that loaded the old file keeps working; retire drops the old key', async () => {
    const own = await createTestContext()
    const dataDir = tempDir()
    const running = loadMasterKeyring({ dataDir })
    // A second controller on the same data dir, loaded before the rotation.
    const other = loadMasterKeyring({ dataDir })
    const ctx = { ...own.ctx, keyring: running }
    await verifyMasterKey(ctx.db, running)
    const seeded = await seed(ctx, 'kf')
    const signingKeyId = await ensureSigningKey(ctx.db, running)
    const oldId = running.current.id

    const report = await rotateMasterKey({ db: ctx.db, dataDir })
    assert.equal(report.mode, 'key_file')
    assert.notEqual(report.currentKeyId, oldId)
    assert.deepEqual(report.olderKeyIds, [oldId])
    assert.deepEqual(report.rewrapped, {
      'credential.secret': 3,
      'app_user.totp_secret': 1,
      'app_user.totp_pending_secret': 1,
      'agent_signing_key.private_key': 1,
      'run.secret_params': 1,
      'setting.master_key_check': 1,
      'notification_channel.secret': 1,
      'setting.smtp_password': 1,
    })
    assert.deepEqual(report.failed, [])
    if (process.platform !== 'win32') assert.equal(statSync(path.join(dataDir, MASTER_KEY_FILE)).mode & 0o777, 0o600)
    assert.deepEqual(await kidsInUse(ctx), [report.currentKeyId])

    await assertAllOpen(ctx, seeded)
    await assertAllOpen({ ...ctx, keyring: other }, seeded)
    assert.equal(other.current.id, report.currentKeyId, 'the reloaded keyring seals with the new key')

    const early = await retireOldKeys({ db: ctx.db, dataDir })
    .catch((e: unknown) => e)
    assert.match(String((early as Error).message), /the key file changed \d+ s ago/)
    const retired = await retireOldKeys({ db: ctx.db, dataDir, settleMs: 0 })
    assert.deepEqual(retired.retiredKeyIds, [oldId])
    const fresh = loadMasterKeyring({ dataDir })
    assert.deepEqual(fresh.keys.map((k) => k.id), [report.currentKeyId])
    assert.ok(readFileSync(path.join(dataDir, MASTER_KEY_FILE), 'utf8').startsWith('# OpsConductor master key'))
    await assertAllOpen({ ...ctx, keyring: fresh }, seeded)
    await assertAllOpen({ ...ctx, keyring: other }, seeded)
    assert.deepEqual((await activeSigningKeys(ctx.db, fresh)).map((k) => k.keyId), [signingKeyId], 'the re-wrapped signing key opens under the new key alone')
    await verifyMasterKey(ctx.db, fresh)
    await assert.rejects(verifyMasterKey(ctx.db, createKeyring([running.keys.find((k) => k.id === oldId)!.key])), ConfigError)

    const actions = (await ctx.db.select().from(auditLog).orderBy(auditLog.id)).filter((r) => r.action.startsWith('keys.'))
    assert.deepEqual(actions.map((r) => [r.action, r.resourceType, r.resourceId, r.outcome]), [
      ['keys.rotate', 'master_key', report.currentKeyId, 'success'],
      ['keys.retire', 'master_key', report.currentKeyId, 'success'],
    ])
    await own.close()
  })

  test('retire refuses while a value still uses an older key; rotate --rewrap-only then finishes the job', async () => {
    const own = await createTestContext()
    const dataDir = tempDir()
    const config = loadConfig({ OPSC_DATA_DIR: dataDir })
    const oldRing = loadMasterKeyring({ dataDir })
    await verifyMasterKey(own.ctx.db, oldRing)
    const staleCtx = { ...own.ctx, keyring: createKeyring(oldRing.keys.map((k) => k.key)) }
    const rotated = await keysRotateCommand(own.ctx.db, config)
    assert.equal(rotated.exitCode, 0)
    assert.match(rotated.output, /^new master key [0-9a-f]{16} is current in .*master\.key\nre-wrapped 1 sealed value \(setting\.master_key_check 1\)\nolder keys kept: /)
    // A controller that has not noticed the rotation yet saves a credential with the old key.
    const late = await seed(staleCtx, 'late')
    const refused = await keysRetireCommand(own.ctx.db, config, { settleMs: 0 })
    assert.equal(refused.exitCode, 1)
    assert.match(refused.output, /^8 sealed value\(s\) still use an older master key \(credential\.secret 3 under key [0-9a-f]{16}, app_user\.totp_secret 1 under key .*; run `opsconductor keys rotate --rewrap-only` first$/)
    const rewrap = await keysRotateCommand(own.ctx.db, config, { rewrapOnly: true })
    assert.equal(rewrap.exitCode, 0)
    assert.match(rewrap.output, /^current master key [0-9a-f]{16} \(.*\)\nre-wrapped 8 sealed values \(credential\.secret 3, app_user\.totp_secret 1, app_user\.totp_pending_secret 1, run\.secret_params 1, notification_channel\.secret 1, setting\.smtp_password 1\)/)
    const done = await keysRetireCommand(own.ctx.db, config, { settleMs: 0 })
    assert.deepEqual(done.exitCode, 0)
    assert.match(done.output, /^retired [0-9a-f]{16}; .* now holds only the current key/)
    assert.match((await keysRetireCommand(own.ctx.db, config, { settleMs: 0 })).output, /^nothing to retire/)
    await assertAllOpen({ ...own.ctx, keyring: loadMasterKeyring({ dataDir }) }, late)
    await own.close()
  })

  test('a damaged value is reported and left alone while the rest rotate; the command exits 1', async () => {
    const own = await createTestContext()
    const dataDir = tempDir()
    const ring = loadMasterKeyring({ dataDir })
    const ctx = { ...own.ctx, keyring: ring }
    const seeded = await seed(ctx, 'dmg')
    const victim = seeded.credentialIds[0]!
    await ctx.db.execute(sql`update credential set secret = jsonb_set(secret, '{tag}', to_jsonb(${randomBytes(16).toString('base64')}::text)) where id = ${victim}`)
    const result = await keysRotateCommand(ctx.db, loadConfig({ OPSC_DATA_DIR: dataDir }))
    assert.equal(result.exitCode, 1)
    assert.ok(result.output.includes(`cannot re-wrap credential.secret ${victim}: does not decrypt (damaged or tampered)`), result.output)
    const fresh = loadMasterKeyring({ dataDir })
    for (const id of seeded.credentialIds.slice(1)) await openCredential({ ...ctx, keyring: fresh }, id)
    await own.close()
  })

  test('rotation refuses a key file that does not open the database, and leaves the file as it was', async () => {
    const own = await createTestContext()
    await verifyMasterKey(own.ctx.db, createKeyring([randomBytes(32)]))
    const dataDir = tempDir()
    loadMasterKeyring({ dataDir })
    const before = readFileSync(path.join(dataDir, MASTER_KEY_FILE), 'utf8')
    await assert.rejects(rotateMasterKey({ db: own.ctx.db, dataDir }), /cannot decrypt credentials with the configured master key/)
    assert.equal(readFileSync(path.join(dataDir, MASTER_KEY_FILE), 'utf8'), before)
    await assert.rejects(rotateMasterKey({ db: own.ctx.db, dataDir: tempDir() + '/missing' }), /no master key file at/)
    await own.close()
  })

  test('two rotations at once keep every key they introduced', async () => {
    const own = await createTestContext()
    const dataDir = tempDir()
    const ring = loadMasterKeyring({ dataDir })
    const ctx = { ...own.ctx, keyring: ring }
    const seeded = await seed(ctx, 'race')
    const [a, b] = await Promise.all([rotateMasterKey({ db: ctx.db, dataDir }), rotateMasterKey({ db: ctx.db, dataDir })])
    const fresh = loadMasterKeyring({ dataDir })
    assert.equal(fresh.keys.length, 3)
    for (const id of [a.currentKeyId, b.currentKeyId]) assert.ok(fresh.byId(id))
    await assertAllOpen({ ...ctx, keyring: fresh }, seeded)
    await own.close()
  })
})

describe('OPSC_MASTER_KEY rotation', () => {
  test('with new,old configured, rotate re-wraps everything to the new key and retire says the old one can go', async () => {
    const [oldKey, newKey] = [randomBytes(32), randomBytes(32)]
    const oldCtx = withKeyring(createKeyring([oldKey], 'OPSC_MASTER_KEY'))
    await verifyMasterKey(oldCtx.db, oldCtx.keyring)
    const seeded = await seed(oldCtx, 'env')
    const envKey = `${newKey.toString('base64')},${oldKey.toString('base64')}`
    const config = loadConfig({ OPSC_DATA_DIR: tempDir(), OPSC_MASTER_KEY: envKey })
    const refused = await keysRetireCommand(t.ctx.db, config)
    assert.equal(refused.exitCode, 1)
    const rotated = await keysRotateCommand(t.ctx.db, config)
    assert.equal(rotated.exitCode, 0, rotated.output)
    const newId = createKeyring([newKey]).current.id
    assert.match(rotated.output, new RegExp(`^current master key ${newId} \\(OPSC_MASTER_KEY\\)\\nre-wrapped 9 sealed values`))
    assert.deepEqual(await kidsInUse(t.ctx), [newId])
    await assertAllOpen(withKeyring(createKeyring([newKey])), seeded)
    const retire = await keysRetireCommand(t.ctx.db, config)
    assert.equal(retire.exitCode, 0)
    assert.equal(retire.output, `every sealed value uses the current key ${newId}; remove ${createKeyring([oldKey]).current.id} from OPSC_MASTER_KEY on every controller`)
    const single = await keysRetireCommand(t.ctx.db, loadConfig({ OPSC_DATA_DIR: tempDir(), OPSC_MASTER_KEY: newKey.toString('base64') }))
    assert.match(single.output, /^nothing to retire: OPSC_MASTER_KEY holds only the current key/)
  })

  test('the config accepts comma-separated keys and names a bad or repeated one', () => {
    const [a, b] = [randomBytes(32).toString('base64'), randomBytes(32).toString('base64')]
    assert.equal(loadConfig({ OPSC_MASTER_KEY: `${a},${b}` }).OPSC_MASTER_KEY, `${a},${b}`)
    assert.throws(() => loadConfig({ OPSC_MASTER_KEY: `${a},c2hvcnQ=` }), { message: /^OPSC_MASTER_KEY must be 32 bytes encoded as base64 \(several keys: comma-separated/ })
    assert.throws(() => loadConfig({ OPSC_MASTER_KEY: `${a}, ${a}` }), { message: 'OPSC_MASTER_KEY lists the same key twice' })
  })
})
