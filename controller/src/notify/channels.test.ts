import assert from 'node:assert/strict'
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { eq } from 'drizzle-orm'
import { call, createTestUser, errorPaths, type CallResult, type TestUser } from '../../../test/harness/auth.ts'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { hasOpenssl } from '../../../test/harness/keys.ts'
import { startSmtpReceiver, type SmtpReceiver } from '../../../test/harness/receivers.ts'
import { createApp } from '../app.ts'
import { auditLog } from '../audit/audit.sql.ts'
import { setting } from '../settings/settings.sql.ts'
import { emailDriver } from './channels/email.ts'
import { driverFor } from './channels/index.ts'
import { parseRetryAfter } from './channels/http-post.ts'
import type { ChannelDriver, Message } from './channels/types.ts'
import { notificationChannel, type NotificationChannelRow } from './notify.sql.ts'
import { loadSmtpTransport } from './smtp-settings.ts'

/*
 * Channels against real receivers: an smtp-server on a loopback port (AUTH only after STARTTLS,
 * with a certificate made here by openssl) and node:http servers standing in for Slack, Teams and
 * webhook endpoints. Every secret used is collected, and at the end no API response and no audit
 * row may contain any of them.
 */

let t: TestContext
let app: ReturnType<typeof createApp>
let admin: TestUser
let operator: TestUser
let viewer: TestUser
const responses: CallResult[] = []
const SECRETS = {
  smtpPassword: 'smtp-pass-Qv71-secret',
  slackToken: 'T000/B000/slacktoken9Xy',
  teamsToken: 'teams-token-Lm40z',
  webhookToken: 'hooktoken-Pz88',
  hmac: 'hmac-secret-0123456789-abcdef',
  apiKey: 'api-key-value-Wd35',
  basicPassword: 'basic-pass-Kk02',
}

/** Every API call of this file goes through here, so the leak check sees every response. */
async function api(user: TestUser, method: 'GET' | 'POST' | 'PUT' | 'DELETE', p: string, body?: unknown): Promise<CallResult> {
  const res = await call(app, method, p, { token: user.token, ...(body !== undefined ? { body } : {}) })
  responses.push(res)
  return res
}

// ---------------------------------------------------------------------------------------------
// Receivers

interface Received {
  method: string
  url: string
  headers: IncomingMessage['headers']
  body: string
}

interface Reply {
  status: number
  body?: string
  headers?: Record<string, string>
}

interface HttpReceiver {
  url: string
  received: Received[]
  /** Replies for the next requests, in order; then 200 "ok". */
  replies: Reply[]
  close(): Promise<void>
}

async function httpReceiver(): Promise<HttpReceiver> {
  const received: Received[] = []
  const replies: Reply[] = []
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      received.push({ method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks).toString('utf8') })
      const reply = replies.shift() ?? { status: 200, body: 'ok' }
      res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers })
      res.end(reply.body ?? '')
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  return { url: `http://127.0.0.1:${port}`, received, replies, close: () => new Promise((resolve) => server.close(() => resolve())) }
}

let smtp: SmtpReceiver
let slack: HttpReceiver
let teams: HttpReceiver
let hook: HttpReceiver

before(async () => {
  t = await createTestContext()
  app = createApp(t.ctx, { uiDir: '/nonexistent' })
  admin = await createTestUser(t.ctx, 'admin')
  operator = await createTestUser(t.ctx, 'operator')
  viewer = await createTestUser(t.ctx, 'viewer')
  slack = await httpReceiver()
  teams = await httpReceiver()
  hook = await httpReceiver()
  if (hasOpenssl) smtp = await startSmtpReceiver({ username: 'mailer', password: SECRETS.smtpPassword })
})
after(async () => {
  await Promise.all([slack.close(), teams.close(), hook.close(), smtp?.close()])
  await t.close()
})

const CH = '/api/v1/notification-channels'
const SMTP = '/api/v1/notification/smtp'

async function createChannel(body: Record<string, unknown>): Promise<string> {
  const res = await api(admin, 'POST', CH, body)
  assert.equal(res.status, 201, JSON.stringify(res.body))
  return res.body.id
}

// ---------------------------------------------------------------------------------------------

describe('SMTP settings and email channels', { skip: !hasOpenssl && 'needs openssl' }, () => {
  test('invalid settings are 400s naming the field, and nothing is stored', async () => {
    assert.equal((await api(admin, 'GET', `${SMTP}/settings`)).body.configured, false)
    const cases: [unknown, string[]][] = [
      [{ host: '127.0.0.1', security: 'none', username: 'mailer', password: 'x', from_address: 'ops@example.test' }, ['security']],
      [{ host: 'bad host!', port: 70000, security: 'smtps', from_address: 'nope' }, ['host', 'port', 'security', 'from_address']],
      [{ port: 25 }, ['host', 'from_address']],
      [{ host: '127.0.0.1', from_address: 'ops@example.test', ca_pem: 'not a certificate' }, ['ca_pem']],
      [{ host: '127.0.0.1', from_address: 'ops@example.test', password: 'pw' }, ['username']],
    ]
    for (const [body, expected] of cases) {
      const res = await api(admin, 'POST', `${SMTP}/settings`, body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(res.body.error.code, 'VALIDATION')
      for (const p of expected) assert.ok(errorPaths(res.body).includes(p), `${JSON.stringify(body)} → ${JSON.stringify(res.body.error.details)}`)
    }
    assert.equal((await t.ctx.db.select().from(setting).where(eq(setting.key, 'smtp'))).length, 0)
    assert.equal((await api(admin, 'POST', `${SMTP}/test`, { to: 'a@example.test' })).status, 412)
  })

  test('settings are saved with a sealed password; a test email goes through STARTTLS and AUTH and returns the server answer', async () => {
    const res = await api(admin, 'POST', `${SMTP}/settings`, {
      host: '127.0.0.1', port: smtp.port, security: 'starttls', username: 'mailer', password: SECRETS.smtpPassword,
      from_address: 'opsconductor@example.test', from_name: 'OpsConductor', ca_pem: smtp.ca,
    })
    assert.equal(res.status, 200, JSON.stringify(res.body))
    assert.equal(res.body.has_password, true)
    assert.equal(res.body.password, undefined)
    const got = await api(admin, 'GET', `${SMTP}/settings`)
    assert.deepEqual({ ...got.body, updated_at: undefined }, { ...res.body, updated_at: undefined })
    // A partial POST keeps the rest, the password included.
    assert.equal((await api(admin, 'POST', `${SMTP}/settings`, { timeout_ms: 10_000 })).body.has_password, true)

    const sent = await api(admin, 'POST', `${SMTP}/test`, { to: 'oncall@example.test' })
    assert.equal(sent.status, 200, JSON.stringify(sent.body))
    assert.equal(sent.body.ok, true, JSON.stringify(sent.body))
    assert.match(sent.body.response, /^250 /)
    const mail = smtp.mails.at(-1)!
    assert.equal(mail.user, 'mailer')
    assert.equal(mail.secure, true)
    assert.deepEqual(mail.to, ['oncall@example.test'])
    assert.equal(mail.from, 'opsconductor@example.test')
    assert.equal(mail.subject, 'OpsConductor SMTP test')
    assert.match(mail.raw, /Content-Type: text\/plain/)
    assert.match(mail.raw, /Content-Type: text\/html/)
  })

  test('refused recipients are permanent, 4xx are retryable, an untrusted certificate is permanent', async () => {
    const bounced = await api(admin, 'POST', `${SMTP}/test`, { to: 'bounce@example.test' })
    assert.equal(bounced.body.ok, false)
    assert.equal(bounced.body.permanent, true, JSON.stringify(bounced.body))
    assert.match(bounced.body.error, /bounce@example\.test/)
    const later = await api(admin, 'POST', `${SMTP}/test`, { to: 'later@example.test' })
    assert.equal(later.body.ok, false)
    assert.equal(later.body.permanent, false, JSON.stringify(later.body))
    assert.equal((await api(admin, 'POST', `${SMTP}/settings`, { ca_pem: null })).status, 200)
    const untrusted = await api(admin, 'POST', `${SMTP}/test`, { to: 'oncall@example.test' })
    assert.equal(untrusted.body.ok, false)
    assert.equal(untrusted.body.permanent, true, JSON.stringify(untrusted.body))
    assert.match(untrusted.body.error, /certificate/i)
    assert.equal((await api(admin, 'POST', `${SMTP}/settings`, { ca_pem: smtp.ca })).status, 200)
  })

  test('an email channel sends text and html to its recipients through the SMTP settings', async () => {
    const id = await createChannel({ name: 'Ops mail', type: 'email', config: { to: ['ops@example.test', 'lead@example.test'], subject_prefix: '[prod]' } })
    const before = smtp.mails.length
    const res = await api(admin, 'POST', `${CH}/${id}/test`)
    assert.equal(res.status, 200)
    assert.equal(res.body.ok, true, JSON.stringify(res.body))
    assert.equal(res.body.http_status, null)
    assert.match(res.body.response, /^250 /)
    assert.equal(smtp.mails.length, before + 1)
    const mail = smtp.mails.at(-1)!
    assert.deepEqual(mail.to, ['ops@example.test', 'lead@example.test'])
    assert.equal(mail.subject, '[prod] Test notification for channel "Ops mail"')
    // An email channel takes no secret: the SMTP password lives in the settings.
    const withSecret = await api(admin, 'POST', CH, { name: 'x', type: 'email', config: { to: ['a@example.test'] }, secret: { password: 'nope-nope' } })
    assert.equal(withSecret.status, 400)
    assert.deepEqual(errorPaths(withSecret.body), ['secret.password'])
  })

  test('the delivery id becomes the Message-ID: the same on every attempt of one notification', async () => {
    const driver = emailDriver(() => loadSmtpTransport(t.ctx))
    const ch = { id: randomUUID(), name: 'm', type: 'email', config: { to: ['ops@example.test'] } } as unknown as NotificationChannelRow
    const { payload } = driver.render(ch, { event: 'run.failed', severity: 'error', subject: 'redelivered', text: 't' })
    const id = randomUUID()
    const before = smtp.mails.length
    for (let i = 0; i < 2; i++) assert.equal((await driver.deliver(ch, {}, payload, AbortSignal.timeout(30_000), { id })).ok, true)
    const ids = smtp.mails.slice(before).map((m) => /^message-id:\s*(.*)$/im.exec(m.raw.split(/\r?\n\r?\n/, 1)[0]!)?.[1]?.trim())
    assert.deepEqual(ids, [`<${id}@opsconductor>`, `<${id}@opsconductor>`])
  })
})

describe('Slack, Teams and webhook payloads', () => {
  test('Slack: text fallback and blocks (header, section, fields, actions button, context)', async () => {
    const id = await createChannel({ name: 'Slack ops', type: 'slack', secret: { url: `${slack.url}/services/${SECRETS.slackToken}` } })
    const res = await api(admin, 'POST', `${CH}/${id}/test`)
    assert.deepEqual({ ...res.body, duration_ms: 0 }, { ok: true, http_status: 200, response: 'ok', error: null, duration_ms: 0, permanent: false, retry_after_ms: null })
    const req = slack.received.at(-1)!
    assert.equal(req.method, 'POST')
    assert.equal(req.url, `/services/${SECRETS.slackToken}`)
    assert.match(req.headers['content-type']!, /^application\/json/)
    const body = JSON.parse(req.body)
    assert.deepEqual(Object.keys(body).sort(), ['blocks', 'text'])
    assert.equal(typeof body.text, 'string')
    assert.match(body.text, /^\[INFO\] Test notification for channel "Slack ops"/)
    const [header, section, fields, actions, context] = body.blocks
    assert.equal(body.blocks.length, 5)
    assert.deepEqual(header, { type: 'header', text: { type: 'plain_text', text: ':information_source: Test notification for channel "Slack ops"', emoji: true } })
    assert.equal(section.type, 'section')
    assert.equal(section.text.type, 'mrkdwn')
    assert.match(section.text.text, /^This is a test message/)
    assert.equal(fields.type, 'section')
    assert.deepEqual(fields.fields.slice(0, 2), [{ type: 'mrkdwn', text: '*Channel*\nSlack ops' }, { type: 'mrkdwn', text: '*Type*\nslack' }])
    assert.equal(actions.type, 'actions')
    assert.equal(actions.elements.length, 1)
    assert.deepEqual(actions.elements[0], { type: 'button', text: { type: 'plain_text', text: 'Open in OpsConductor', emoji: true }, url: 'http://localhost/', action_id: 'opsc_open' })
    assert.deepEqual(context, { type: 'context', elements: [{ type: 'mrkdwn', text: 'OpsConductor · notification.test · INFO' }] })
  })

  test('Slack: limits hold and mrkdwn is escaped', () => {
    const m: Message = { event: 'run.failed', severity: 'error', subject: 'x'.repeat(400), text: 'a <b> & c', facts: Array.from({ length: 23 }, (_, i) => ({ label: `F${i}`, value: 'v'.repeat(3000) })) }
    const { payload } = driverFor('slack')!.render({} as NotificationChannelRow, m)
    const blocks = payload.blocks as { type: string; text?: { text: string }; fields?: { text: string }[] }[]
    assert.equal([...blocks[0]!.text!.text].length, 150)
    assert.equal(blocks[1]!.text!.text, 'a &lt;b&gt; &amp; c')
    const fieldSections = blocks.filter((b) => b.fields)
    assert.deepEqual(fieldSections.map((b) => b.fields!.length), [10, 10, 3])
    assert.ok(fieldSections.every((b) => b.fields!.every((f) => [...f.text].length <= 2000)), 'fields within 2000 characters')
    assert.ok(!blocks.some((b) => b.type === 'actions'), 'no link, no button')
  })

  test('Teams: a message with one Adaptive Card attachment (TextBlock, FactSet, Action.OpenUrl)', async () => {
    const id = await createChannel({ name: 'Teams ops', type: 'teams', secret: { url: `${teams.url}/webhookb2/${SECRETS.teamsToken}` } })
    teams.replies.push({ status: 202, body: '' })
    const res = await api(admin, 'POST', `${CH}/${id}/test`)
    assert.equal(res.body.ok, true, JSON.stringify(res.body))
    assert.equal(res.body.http_status, 202)
    const body = JSON.parse(teams.received.at(-1)!.body)
    assert.equal(body.type, 'message')
    assert.equal(body.attachments.length, 1)
    const [att] = body.attachments
    assert.equal(att.contentType, 'application/vnd.microsoft.card.adaptive')
    assert.equal(att.contentUrl, null)
    const card = att.content
    assert.equal(card.$schema, 'http://adaptivecards.io/schemas/adaptive-card.json')
    assert.equal(card.type, 'AdaptiveCard')
    assert.equal(card.version, '1.4')
    const [title, text, facts, footer] = card.body
    assert.deepEqual(title, { type: 'TextBlock', text: 'Test notification for channel "Teams ops"', size: 'Large', weight: 'Bolder', color: 'Accent', wrap: true })
    assert.equal(text.type, 'TextBlock')
    assert.equal(text.wrap, true)
    assert.equal(facts.type, 'FactSet')
    assert.deepEqual(facts.facts.slice(0, 2), [{ title: 'Channel', value: 'Teams ops' }, { title: 'Type', value: 'teams' }])
    assert.equal(footer.type, 'TextBlock')
    assert.deepEqual(card.actions, [{ type: 'Action.OpenUrl', title: 'Open in OpsConductor', url: 'http://localhost/' }])
    // A legacy connector reports throttling in a 200 body: that is not a delivery.
    teams.replies.push({ status: 200, body: 'Microsoft Teams endpoint returned HTTP error 429 with ContextId …' })
    const throttled = await api(admin, 'POST', `${CH}/${id}/test`)
    assert.equal(throttled.body.ok, false)
    assert.equal(throttled.body.permanent, false)
  })

  test('webhook: default JSON body, headers, basic auth, and an HMAC the receiver can verify', async () => {
    const id = await createChannel({
      name: 'Hook',
      type: 'webhook',
      config: { method: 'PUT', headers: { 'X-Team': 'ops' }, username: 'notifier' },
      secret: { url: `${hook.url}/in?token=${SECRETS.webhookToken}`, hmac_secret: SECRETS.hmac, password: SECRETS.basicPassword, headers: { 'X-Api-Key': SECRETS.apiKey } },
    })
    const res = await api(admin, 'POST', `${CH}/${id}/test`)
    assert.equal(res.body.ok, true, JSON.stringify(res.body))
    const req = hook.received.at(-1)!
    assert.equal(req.method, 'PUT')
    assert.equal(req.url, `/in?token=${SECRETS.webhookToken}`)
    assert.equal(req.headers['x-team'], 'ops')
    assert.equal(req.headers['x-api-key'], SECRETS.apiKey)
    assert.equal(req.headers.authorization, `Basic ${Buffer.from(`notifier:${SECRETS.basicPassword}`).toString('base64')}`)
    assert.equal(req.headers['x-opsconductor-event'], 'notification.test')
    assert.match(String(req.headers['x-opsconductor-delivery']), /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/, 'a test send is a delivery of its own')
    assert.match(req.headers['content-type']!, /^application\/json/)
    // What a receiver does: recompute over the raw body, compare in constant time, check freshness.
    const timestamp = Number(req.headers['x-opsconductor-timestamp'])
    assert.ok(Math.abs(Date.now() / 1000 - timestamp) < 300, 'fresh timestamp')
    const expected = Buffer.from(`sha256=${createHmac('sha256', SECRETS.hmac).update(`${timestamp}.${req.body}`).digest('hex')}`)
    const signature = Buffer.from(String(req.headers['x-opsconductor-signature']))
    assert.ok(signature.length === expected.length && timingSafeEqual(signature, expected), 'signature verifies')
    const tampered = createHmac('sha256', SECRETS.hmac).update(`${timestamp}.${req.body.replace('test', 'tost')}`).digest('hex')
    assert.notEqual(`sha256=${tampered}`, signature.toString())
    const body = JSON.parse(req.body)
    assert.deepEqual(Object.keys(body), ['event', 'severity', 'subject', 'text', 'link', 'facts', 'data'])
    assert.equal(body.event, 'notification.test')
    assert.equal(body.link, 'http://localhost/')
    assert.deepEqual(body.data, { channel_id: id, test: true })
  })

  test('webhook: X-OpsConductor-Delivery carries the notification id on every attempt, and a secret header cannot replace it', async () => {
    const id = randomUUID()
    const ch = { id: randomUUID(), name: 'd', type: 'webhook', config: { headers: {} } } as unknown as NotificationChannelRow
    const webhook = driverFor('webhook')!
    const { payload } = webhook.render(ch, { event: 'run.failed', severity: 'error', subject: 's', text: 't' })
    const before = hook.received.length
    for (let i = 0; i < 2; i++) {
      const r = await webhook.deliver(ch, { url: `${hook.url}/d`, hmac_secret: SECRETS.hmac, 'header:X-OpsConductor-Delivery': 'forged' }, payload, AbortSignal.timeout(10_000), { id })
      assert.equal(r.ok, true, JSON.stringify(r))
    }
    assert.deepEqual(hook.received.slice(before).map((r) => r.headers['x-opsconductor-delivery']), [id, id])
  })

  test('webhook: a body template is rendered with the jobs template engine', async () => {
    const template = '{"title": {{ subject | json }}, "sev": "{{ severity | upper }}", "channel": {{ data.channel_id | json }}}'
    const id = await createChannel({ name: 'Templated', type: 'webhook', config: { body_template: template }, secret: { url: `${hook.url}/t` } })
    const res = await api(admin, 'POST', `${CH}/${id}/test`)
    assert.equal(res.body.ok, true, JSON.stringify(res.body))
    const req = hook.received.at(-1)!
    assert.equal(req.headers['x-opsconductor-signature'], undefined, 'no hmac_secret, no signature')
    assert.deepEqual(JSON.parse(req.body), { title: 'Test notification for channel "Templated"', sev: 'INFO', channel: id })
    // A data path the event lacks falls back to the default body (with the reason), rather than losing the message.
    const row = (await t.ctx.db.select().from(notificationChannel).where(eq(notificationChannel.id, id)))[0]!
    const { payload } = driverFor('webhook')!.render({ ...row, config: { ...row.config, body_template: '{{ data.run.id }}' } }, { event: 'run.failed', severity: 'error', subject: 's', text: 't' })
    assert.match(String(payload.template_error), /run/)
    assert.equal(JSON.parse(String(payload.body)).event, 'run.failed')
  })
})

describe('what receivers answer', () => {
  const row = () => ({ id: '00000000-0000-4000-8000-000000000001', name: 'r', type: 'webhook', config: { timeout_ms: 2000 } }) as unknown as NotificationChannelRow
  const deliver = (driver: ChannelDriver, url: string) =>
    driver.deliver(row(), { url }, driver.render(row(), { event: 'e', severity: 'info', subject: 's', text: 't' }).payload, AbortSignal.timeout(10_000), { id: randomUUID() })
  const webhook = driverFor('webhook')!

  test('429 with Retry-After seconds or an HTTP date → retry after that long', async () => {
    hook.replies.push({ status: 429, body: 'slow down', headers: { 'retry-after': '7' } })
    const r = await deliver(webhook, `${hook.url}/x`)
    assert.equal(r.ok, false)
    assert.equal(r.httpStatus, 429)
    assert.equal(r.retryAfterMs, 7000)
    assert.notEqual(r.permanent, true)
    assert.equal(r.response, 'slow down')
    const date = new Date(Date.now() + 120_000).toUTCString()
    hook.replies.push({ status: 503, headers: { 'retry-after': date } })
    const r2 = await deliver(webhook, `${hook.url}/x`)
    assert.ok(r2.retryAfterMs! > 100_000 && r2.retryAfterMs! <= 120_000, String(r2.retryAfterMs))
    assert.equal(parseRetryAfter('soon', Date.now()), undefined)
    assert.equal(parseRetryAfter('Wed, 21 Oct 2015 07:28:00 GMT', Date.now()), 0)
  })

  test('500 and 408 are retryable, 400/404 permanent, a redirect permanent', async () => {
    for (const [status, permanent] of [[500, false], [408, false], [400, true], [404, true], [301, true]] as const) {
      hook.replies.push({ status, body: `status ${status}`, ...(status === 301 ? { headers: { location: 'http://elsewhere.test/' } } : {}) })
      const r = await deliver(webhook, `${hook.url}/x`)
      assert.equal(r.ok, false, String(status))
      assert.equal(r.httpStatus, status)
      assert.equal(r.permanent === true, permanent, `${status}: ${JSON.stringify(r)}`)
    }
  })

  test('connection refused is a retryable error; the answer is cut to 2 KiB and secrets in it are masked', async () => {
    const closed = await httpReceiver()
    await closed.close()
    const r = await deliver(driverFor('slack')!, `${closed.url}/services/${SECRETS.slackToken}`)
    assert.equal(r.ok, false)
    assert.equal(r.httpStatus, undefined)
    assert.notEqual(r.permanent, true)
    assert.match(r.error!, /connection refused/)
    hook.replies.push({ status: 400, body: `bad token ${SECRETS.webhookToken} ${'x'.repeat(5000)}` })
    const echoed = await deliver(webhook, `${hook.url}/x?token=${SECRETS.webhookToken}`)
    assert.ok(Buffer.byteLength(echoed.response!) <= 2048 + 3, `${Buffer.byteLength(echoed.response!)} bytes`)
    assert.ok(!echoed.response!.includes(SECRETS.webhookToken), 'token masked')
    assert.match(echoed.response!, /^bad token \*\*\*/)
  })

  test('a receiver that does not answer in time is a retryable timeout', async () => {
    const silent = createServer(() => {})
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}/`
    const started = Date.now()
    const r = await webhook.deliver({ ...row(), config: { timeout_ms: 1000 } }, { url }, { event: 'e', content_type: 'application/json', body: '{}' }, AbortSignal.timeout(10_000), { id: randomUUID() })
    silent.closeAllConnections()
    silent.close()
    assert.equal(r.ok, false)
    assert.notEqual(r.permanent, true)
    assert.match(r.error!, /no answer within 1000 ms/)
    assert.ok(Date.now() - started < 5000, `took ${Date.now() - started} ms`)
  })
})

describe('channel API', () => {
  test('viewers and operators get 403 on every channel and SMTP route', async () => {
    const id = await createChannel({ name: 'Guarded', type: 'slack', secret: { url: `${slack.url}/g` } })
    for (const user of [viewer, operator]) {
      for (const [method, p, body] of [
        ['GET', CH],
        ['POST', CH, { name: 'n', type: 'slack', secret: { url: `${slack.url}/n` } }],
        ['GET', `${CH}/${id}`],
        ['PUT', `${CH}/${id}`, { name: 'renamed' }],
        ['DELETE', `${CH}/${id}`],
        ['POST', `${CH}/${id}/test`],
        ['GET', `${SMTP}/settings`],
        ['POST', `${SMTP}/settings`, { port: 25 }],
        ['POST', `${SMTP}/test`, { to: 'a@example.test' }],
      ] as const) {
        const res = await api(user, method, p, body)
        assert.equal(res.status, 403, `${user.user.role} ${method} ${p}`)
        assert.equal(res.body.error.code, 'FORBIDDEN')
      }
    }
    assert.equal((await api(admin, 'GET', `${CH}/${id}`)).body.name, 'Guarded')
  })

  test('invalid channels are 400s naming each field; a failed update changes nothing', async () => {
    const cases: [unknown, string[]][] = [
      [{ name: '', type: 'pager' }, ['name', 'type']],
      [{ name: 'a', type: 'slack' }, ['secret.url']],
      [{ name: 'a', type: 'slack', secret: { url: 'ftp://x/y' } }, ['secret.url']],
      [{ name: 'a', type: 'slack', secret: { url: 'https://user:pw@hooks.example/x' } }, ['secret.url']],
      [{ name: 'a', type: 'slack', config: { channel: '#ops' }, secret: { url: `${slack.url}/a`, hmac_secret: 'x'.repeat(20) } }, ['config', 'secret.hmac_secret']],
      [{ name: 'a', type: 'email', config: { to: ['not-an-address'] } }, ['config.to[0]']],
      [{ name: 'a', type: 'email', config: {} }, ['config.to']],
      [{ name: 'a', type: 'webhook', config: { method: 'GET', timeout_ms: 5 }, secret: { url: `${hook.url}/a` } }, ['config.method', 'config.timeout_ms']],
      [{ name: 'a', type: 'webhook', config: { headers: { Authorization: 'Bearer abc', 'X-Ok': 'Token abc', 'Content-Type': 'text/plain' } }, secret: { url: `${hook.url}/a` } }, ['config.headers.Authorization', 'config.headers.X-Ok', 'config.headers.Content-Type']],
      [{ name: 'a', type: 'webhook', config: { body_template: '{{ unknown_name }} {{ secret "db" "password" }}' }, secret: { url: `${hook.url}/a` } }, ['config.body_template']],
      [{ name: 'a', type: 'webhook', config: { body_template: '{"text": "{{ text }}"}' }, secret: { url: `${hook.url}/a` } }, ['config.body_template']],
      [{ name: 'a', type: 'webhook', secret: { url: `${hook.url}/a`, hmac_secret: 'short' } }, ['secret.hmac_secret']],
      [{ name: 'a', type: 'webhook', config: { username: 'u' }, secret: { url: `${hook.url}/a` } }, ['secret.password']],
      [{ name: 'a', type: 'webhook', secret: { url: `${hook.url}/a`, password: 'pw' } }, ['config.username']],
      [{ name: 'a', type: 'webhook', secret: { url: `${hook.url}/a`, headers: { 'X-Opsconductor-Signature': 'forged' } } }, ['secret.headers.X-Opsconductor-Signature']],
      [{ name: 'a', type: 'webhook', config: { headers: { 'X-OpsConductor-Delivery': 'fixed' } }, secret: { url: `${hook.url}/a` } }, ['config.headers.X-OpsConductor-Delivery']],
      [{ name: 'a', type: 'webhook', secret: { url: `${hook.url}/a`, headers: { 'bad header': 'v' } } }, ['secret.headers.bad header']],
    ]
    for (const [body, expected] of cases) {
      const res = await api(admin, 'POST', CH, body)
      assert.equal(res.status, 400, JSON.stringify(body))
      assert.equal(res.body.error.code, 'VALIDATION')
      assert.equal(typeof res.body.error.message, 'string')
      for (const p of expected) assert.ok(errorPaths(res.body).includes(p), `${JSON.stringify(body)} → ${JSON.stringify(res.body.error.details)}`)
    }

    const id = await createChannel({ name: 'Stable', type: 'webhook', config: { headers: { 'X-Team': 'ops' } }, secret: { url: `${hook.url}/stable`, hmac_secret: SECRETS.hmac } })
    const [stored] = await t.ctx.db.select().from(notificationChannel).where(eq(notificationChannel.id, id))
    for (const patch of [{ type: 'slack' }, { config: { method: 'DELETE' } }, { secret: { url: null } }, { rate_limit_per_minute: 0 }, { config: { headers: { Cookie: 'a=b' } } }]) {
      const res = await api(admin, 'PUT', `${CH}/${id}`, patch)
      assert.equal(res.status, 400, JSON.stringify(patch))
    }
    const [unchanged] = await t.ctx.db.select().from(notificationChannel).where(eq(notificationChannel.id, id))
    assert.deepEqual(unchanged, stored)
  })

  test('PUT merges config and secret fields; GET bodies can be PUT back; names are unique; DELETE hides the channel and wipes its secret', async () => {
    const id = await createChannel({ name: 'Merge me', type: 'webhook', config: { headers: { 'X-Team': 'ops' } }, secret: { url: `${hook.url}/m`, headers: { 'X-Api-Key': SECRETS.apiKey } } })
    const got = await api(admin, 'GET', `${CH}/${id}`)
    assert.deepEqual(got.body.secret_fields, ['headers.X-Api-Key', 'url'])
    assert.equal(got.body.has_secret, true)
    assert.equal(got.body.config.method, 'POST')
    const back = await api(admin, 'PUT', `${CH}/${id}`, got.body)
    assert.equal(back.status, 200, JSON.stringify(back.body))
    const put = await api(admin, 'PUT', `${CH}/${id}`, { config: { timeout_ms: 5000 }, secret: { hmac_secret: SECRETS.hmac, headers: { 'x-api-key': null } } })
    assert.equal(put.status, 200, JSON.stringify(put.body))
    assert.deepEqual(put.body.secret_fields, ['hmac_secret', 'url'])
    assert.deepEqual(put.body.config.headers, { 'X-Team': 'ops' })
    assert.equal(put.body.config.timeout_ms, 5000)

    assert.equal((await api(admin, 'POST', CH, { name: 'MERGE ME', type: 'slack', secret: { url: `${slack.url}/dup` } })).status, 409)
    const list = await api(admin, 'GET', `${CH}?type=webhook&limit=1`)
    assert.equal(list.status, 200)
    assert.equal(list.body.items.length, 1)
    assert.ok(list.body.next, 'a next cursor')
    assert.equal((await api(admin, 'GET', `${CH}?limit=1&cursor=${list.body.next}`)).status, 200)

    assert.equal((await api(admin, 'DELETE', `${CH}/${id}`)).status, 200)
    assert.equal((await api(admin, 'GET', `${CH}/${id}`)).status, 404)
    assert.equal((await api(admin, 'POST', `${CH}/${id}/test`)).status, 404)
    const [row] = await t.ctx.db.select().from(notificationChannel).where(eq(notificationChannel.id, id))
    assert.ok(row!.deletedAt, 'soft-deleted')
    assert.equal(row!.secret, null)
    assert.equal((await api(admin, 'POST', CH, { name: 'Merge me', type: 'slack', secret: { url: `${slack.url}/again` } })).status, 201)
  })

  test('no secret value appears in any API response, audit row or channel config', async () => {
    assert.ok(responses.length > 40, `${responses.length} responses checked`)
    const audit = JSON.stringify(await t.ctx.db.select().from(auditLog))
    assert.match(audit, /notification_channel/)
    const configs = JSON.stringify((await t.ctx.db.select({ config: notificationChannel.config }).from(notificationChannel)))
    const settings = JSON.stringify(await t.ctx.db.select().from(setting))
    for (const [name, value] of Object.entries(SECRETS)) {
      for (const res of responses) assert.ok(!JSON.stringify(res.body).includes(value), `${name} in a response: ${JSON.stringify(res.body).slice(0, 300)}`)
      assert.ok(!audit.includes(value), `${name} in the audit log`)
      assert.ok(!configs.includes(value), `${name} in a channel config`)
      assert.ok(!settings.includes(value), `${name} in the settings table in clear`)
    }
  })
})
