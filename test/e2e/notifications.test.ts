import assert from 'node:assert/strict'
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { rmSync } from 'node:fs'
import { after, before, describe, test } from 'node:test'
import { startControllerProcess, tempDataDir, type ControllerProcess } from '../harness/controller-process.ts'
import { createPostgresDatabase, dropPostgresDatabase, testBackend } from '../harness/db.ts'
import { httpsRequest } from '../harness/https.ts'
import { hasOpenssl } from '../harness/keys.ts'
import { HttpReceiver, startSmtpReceiver, type ReceivedRequest, type SmtpReceiver } from '../harness/receivers.ts'

/*
 * Issue 9's acceptance, end to end: real controller processes (HTTPS API, job engine, outbox
 * worker), channels, rules and jobs made through the public API, and real receivers on loopback —
 * an SMTP server (STARTTLS + AUTH) and HTTP endpoints standing in for Slack, Teams and webhooks.
 * A run fails without any agent: its one `http.get` step asks a loopback service that answers 503.
 *
 * The independent parts run at once on one controller; each kill -9 scenario has a controller
 * (and database) of its own, so killing it disturbs nothing else. The leak sweep runs last, over
 * everything every receiver got, every controller logged and every API response.
 *
 * Waits poll with generous deadlines; nothing asserts how fast something happened.
 */

const backend = await testBackend()
// kill -9 needs a database that outlives the process: the shared Postgres (PGlite dies with it).
const noKill = backend !== 'postgres' ? 'kill -9 needs the shared Postgres (the embedded PGlite belongs to the killed process)' : false
const noSmtp = hasOpenssl ? false : 'needs openssl for the SMTP server certificate'

const ADMIN_PASSWORD = `e2e notify operator passphrase ${randomBytes(6).toString('hex')}`
const PUBLIC_URL = 'https://ops.example.test:8443'
/** Backoff that makes the 8 attempts of a notification span about 40 s. */
const NOTIFY_ENV = { OPSC_NOTIFY_BACKOFF_BASE_MS: '1000', OPSC_NOTIFY_BACKOFF_CAP_MS: '8000', OPSC_NOTIFY_MAX_ATTEMPTS: '8' }
const MAX_ATTEMPTS = 8
const SETTLE_MS = 3_000

const tag = () => randomBytes(4).toString('hex')
const secretValue = (label: string) => `${label}-${randomBytes(12).toString('hex')}`
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/** Every secret value used anywhere in this file: the sweep looks for each in everything. */
const SECRETS = new Map<string, string>()
function secret(label: string): string {
  const value = secretValue(label)
  SECRETS.set(label, value)
  return value
}
const SMTP_USER = 'mailer'
const SMTP_PASSWORD = secret('smtp-password')

// ---------------------------------------------------------------------------------------------
// Controller processes and their API

interface ApiResult {
  status: number
  body: any
  text: string
}

/** Every API response of this file, for the leak sweep. */
const responses: { call: string; text: string }[] = []

/** A controller process that can be killed and started again on the same data dir and database. */
class Controller {
  private current: ControllerProcess | undefined
  /** Every process this controller has been, the killed ones included (their logs are swept too). */
  readonly processes: ControllerProcess[] = []
  private readonly stdout: string[] = []
  private token = ''
  private readonly dataDir = tempDataDir()

  constructor(
    readonly name: string,
    private readonly env: Record<string, string>,
    private readonly databaseUrl: string | undefined,
  ) {}

  static async create(name: string, env: Record<string, string> = {}): Promise<Controller> {
    const databaseUrl = backend === 'postgres' ? await createPostgresDatabase({ migrated: true }) : undefined
    const c = new Controller(
      name,
      {
        OPSC_ADMIN_PASSWORD: ADMIN_PASSWORD,
        OPSC_MASTER_KEY: randomBytes(32).toString('base64'),
        OPSC_PUBLIC_URL: PUBLIC_URL,
        ...NOTIFY_ENV,
        ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
        ...env,
      },
      databaseUrl,
    )
    await c.start()
    return c
  }

  get process(): ControllerProcess {
    assert.ok(this.current, `${this.name} is not running`)
    return this.current
  }

  async start(): Promise<void> {
    const proc = await startControllerProcess({ dataDir: this.dataDir, env: this.env })
    proc.proc.stdout!.on('data', (d: Buffer) => this.stdout.push(d.toString('utf8')))
    this.current = proc
    this.processes.push(proc)
    if (!this.token) {
      const login = await this.api('POST', '/api/v1/auth/login', { username: 'admin', password: ADMIN_PASSWORD }, { auth: false })
      assert.equal(login.status, 200, login.text)
      this.token = login.body.access_token
    }
  }

  async kill(): Promise<void> {
    await this.process.stop('SIGKILL')
    this.current = undefined
  }

  /** Everything the processes wrote: parsed log records, raw stdout seen since start, stderr. */
  logText(): string {
    return this.processes.map((p) => `${JSON.stringify(p.logs)}\n${p.stderr()}`).join('\n') + this.stdout.join('')
  }

  logs(): Record<string, unknown>[] {
    return this.processes.flatMap((p) => p.logs)
  }

  async api(method: string, path: string, body?: unknown, opts: { auth?: boolean } = {}): Promise<ApiResult> {
    const p = this.process
    const res = await httpsRequest(`${p.baseUrl}${path}`, {
      ca: p.ca,
      method,
      headers: { ...(opts.auth === false ? {} : { authorization: `Bearer ${this.token}` }), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      timeoutMs: 30_000,
    })
    responses.push({ call: `${this.name} ${method} ${path}`, text: res.body })
    let parsed: unknown = res.body
    try {
      parsed = res.body ? JSON.parse(res.body) : undefined
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, text: res.body }
  }

  async created(path: string, body: unknown): Promise<string> {
    const res = await this.api('POST', path, body)
    assert.equal(res.status, 201, `${path}: ${res.text}`)
    return res.body.id
  }

  async stop(): Promise<void> {
    if (this.current) await this.current.stop('SIGKILL')
    this.current = undefined
    if (this.databaseUrl) await dropPostgresDatabase(this.databaseUrl)
    rmSync(this.dataDir, { recursive: true, force: true })
  }
}

/** Polls `fn` until it returns something truthy; the error names what was awaited and what was last seen. */
async function eventually<T>(what: string, fn: () => Promise<T | undefined | null | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v) return v
      last = v
    } catch (err) {
      last = err
    }
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`)
    await sleep(everyMs)
  }
}

// ---------------------------------------------------------------------------------------------
// Jobs, rules, notifications

/** A loopback service the failing steps ask: /broken answers 503; /echo answers 500 with what it was sent. */
let service: HttpReceiver
/** What /echo was sent, so a test can prove its secrets really were in play. */
const echoed: { authorization: string | undefined; key: string | null }[] = []

function serviceReplies(req: ReceivedRequest) {
  const url = new URL(req.url, 'http://x')
  if (url.pathname === '/echo') {
    const sent = { authorization: req.headers.authorization, key: url.searchParams.get('key') }
    echoed.push(sent)
    // A misbehaving service that prints the credentials it got into its error page.
    return { status: 500, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ error: 'export failed', you_sent: sent }) }
  }
  return { status: 503, body: 'service unavailable: maintenance' }
}

/** A job whose only step fails (HTTP 503 from the loopback service), with a rule sending its run.failed to the channels. */
async function failingJob(c: Controller, name: string, channelIds: string[], extra: { events?: string[]; definition?: Record<string, unknown> } = {}): Promise<string> {
  const jobId = await c.created('/api/v1/jobs', {
    name,
    steps: [{ id: 'export', type: 'http.get', url: `${service.url}/broken` }],
    ...extra.definition,
  })
  await c.created('/api/v1/notification-rules', {
    name: `notify ${name}`,
    events: extra.events ?? ['run.failed'],
    conditions: { job_ids: [jobId] },
    channel_ids: channelIds,
  })
  return jobId
}

async function runToFailure(c: Controller, jobId: string, request: Record<string, unknown> = {}): Promise<string> {
  const started = await c.api('POST', `/api/v1/jobs/${jobId}/run`, request)
  assert.equal(started.status, 202, started.text)
  const runId: string = started.body.run_id
  const run = await eventually(`run ${runId} to end`, async () => {
    const r = await c.api('GET', `/api/v1/runs/${runId}`)
    return ['queued', 'running'].includes(r.body.status) ? undefined : r.body
  })
  assert.equal(run.status, 'failed', JSON.stringify(run))
  return runId
}

async function notificationsOf(c: Controller, runId: string): Promise<any[]> {
  const res = await c.api('GET', `/api/v1/notifications?run_id=${runId}&limit=100`)
  assert.equal(res.status, 200, res.text)
  return res.body.items
}

async function notification(c: Controller, id: string): Promise<any> {
  const res = await c.api('GET', `/api/v1/notifications/${id}`)
  assert.equal(res.status, 200, res.text)
  return res.body
}

/** Waits until the run has `count` notifications, all in `status`. */
function untilAll(c: Controller, runId: string, count: number, status: string, timeoutMs = 90_000): Promise<any[]> {
  return eventually(
    `${count} notifications of run ${runId} ${status}`,
    async () => {
      const items = await notificationsOf(c, runId)
      return items.length === count && items.every((n) => n.status === status) ? items : undefined
    },
    timeoutMs,
  )
}

const webhookChannel = (name: string, url: string, hmac?: string) => ({ name, type: 'webhook', secret: { url, ...(hmac ? { hmac_secret: hmac } : {}) } })

/** What a receiver does with a signed request: recompute over the raw body, compare in constant time, check the timestamp is fresh. */
function signatureVerifies(hmacSecret: string, req: ReceivedRequest): boolean {
  const ts = String(req.headers['x-opsconductor-timestamp'] ?? '')
  if (!/^\d+$/.test(ts) || Math.abs(req.at / 1000 - Number(ts)) > 300) return false
  const given = Buffer.from(String(req.headers['x-opsconductor-signature'] ?? ''))
  const expected = Buffer.from(`sha256=${createHmac('sha256', hmacSecret).update(`${ts}.${req.body}`).digest('hex')}`)
  return given.length === expected.length && timingSafeEqual(given, expected)
}

const attemptsSummary = (n: any) => n.attempts.map((a: any) => `${a.attempt}:${a.outcome}${a.http_status ? `/${a.http_status}` : ''}`)

// ---------------------------------------------------------------------------------------------

let main: Controller
let smtp: SmtpReceiver | undefined
const receivers: HttpReceiver[] = []
const crashControllers: Controller[] = []

async function receiverUp(): Promise<HttpReceiver> {
  const rx = await HttpReceiver.up()
  receivers.push(rx)
  return rx
}
async function receiverDown(): Promise<HttpReceiver> {
  const rx = await HttpReceiver.down()
  receivers.push(rx)
  return rx
}

before(async () => {
  service = await HttpReceiver.up()
  service.respond = serviceReplies
  // Debug logs: the leak sweep reads everything the controller says.
  main = await Controller.create('main', { OPSC_LOG_LEVEL: 'debug' })
  if (!noSmtp) {
    smtp = await startSmtpReceiver({ username: SMTP_USER, password: SMTP_PASSWORD })
    const res = await main.api('POST', '/api/v1/notification/smtp/settings', {
      host: '127.0.0.1',
      port: smtp.port,
      security: 'starttls',
      username: SMTP_USER,
      password: SMTP_PASSWORD,
      from_address: 'opsconductor@example.test',
      from_name: 'OpsConductor',
      ca_pem: smtp.ca,
    })
    assert.equal(res.status, 200, res.text)
    assert.equal(res.body.has_password, true)
  }
})

after(async () => {
  await Promise.all([main?.stop(), ...crashControllers.map((c) => c.stop())])
  await Promise.all([service?.down(), smtp?.close(), ...receivers.map((r) => r.down())])
})

describe('notifications end to end', { concurrency: true }, () => {
  test('1. a failed run: exactly one email and one signed webhook; Slack and Teams get their documented shapes', { skip: noSmtp }, async () => {
    const hmac = secret('t1-hmac')
    const hookToken = secret('t1-hook-url-token')
    const slackToken = secret('t1-slack-token')
    const teamsToken = secret('t1-teams-token')
    const [hook, slack, teams] = await Promise.all([receiverUp(), receiverUp(), receiverUp()])
    const mailbox = `oncall-${tag()}@example.test`
    const channels = {
      email: await main.created('/api/v1/notification-channels', { name: `mail ${tag()}`, type: 'email', config: { to: [mailbox] } }),
      slack: await main.created('/api/v1/notification-channels', { name: `slack ${tag()}`, type: 'slack', secret: { url: `${slack.url}/services/T0/B0/${slackToken}` } }),
      teams: await main.created('/api/v1/notification-channels', { name: `teams ${tag()}`, type: 'teams', secret: { url: `${teams.url}/webhookb2/${teamsToken}` } }),
      webhook: await main.created('/api/v1/notification-channels', webhookChannel(`hook ${tag()}`, `${hook.url}/in/${hookToken}?token=${hookToken}`, hmac)),
    }
    const jobName = `payroll-export-${tag()}`
    const jobId = await failingJob(main, jobName, Object.values(channels))
    const runId = await runToFailure(main, jobId)
    const link = `${PUBLIC_URL}/runs/${runId}`

    const items = await untilAll(main, runId, 4, 'delivered')
    await sleep(SETTLE_MS)
    const settled = await notificationsOf(main, runId)
    assert.equal(settled.length, 4, 'one notification per channel')
    const byChannel = new Map(settled.map((n) => [n.channel_id, n]))
    for (const [type, id] of Object.entries(channels)) {
      const n = byChannel.get(id)
      assert.ok(n, `a notification for the ${type} channel`)
      assert.equal(n.status, 'delivered', type)
      assert.equal(n.event, 'run.failed')
      assert.deepEqual(attemptsSummary(n).map((s: string) => s.replace(/\/\d+$/, '')), ['1:delivered'], `${type}: one attempt, delivered`)
    }
    assert.deepEqual(items.map((n) => n.id).sort(), settled.map((n) => n.id).sort())

    // Email: exactly one, over STARTTLS with AUTH, naming the job, the status and the run's link.
    const mails = smtp!.mails.filter((m) => m.to.includes(mailbox))
    assert.equal(mails.length, 1, `exactly one email to ${mailbox}`)
    const mail = mails[0]!
    assert.deepEqual(mail.to, [mailbox])
    assert.equal(mail.from, 'opsconductor@example.test')
    assert.equal(mail.user, SMTP_USER, 'authenticated')
    assert.equal(mail.secure, true, 'after STARTTLS')
    assert.ok(mail.subject.includes(jobName) && /failed/i.test(mail.subject), `subject: ${mail.subject}`)
    for (const part of [mail.text, mail.html]) {
      assert.ok(part.includes(jobName), `the job in the body:\n${part}`)
      assert.match(part, /failed/i)
      assert.ok(part.includes(link), `the run's link ${link} in the body:\n${part}`)
    }
    assert.ok(mail.html.includes(`href="${link}"`), 'the html links to the run')
    assert.equal(mail.messageId, `<${byChannel.get(channels.email).id}@opsconductor>`, 'the Message-ID is the notification id')

    // Webhook: exactly one request, signed so that a receiver's own check passes.
    assert.equal(hook.received.length, 1, 'exactly one webhook request')
    const req = hook.received[0]!
    assert.equal(req.method, 'POST')
    assert.equal(req.url, `/in/${hookToken}?token=${hookToken}`)
    assert.ok(signatureVerifies(hmac, req), 'the HMAC verifies with the shared secret and the timestamp is fresh')
    assert.ok(!signatureVerifies(`${hmac}x`, req), 'and does not with another secret')
    assert.ok(!signatureVerifies(hmac, { ...req, body: req.body.replace(jobName, `${jobName}x`) }), 'nor over another body')
    assert.equal(req.headers['x-opsconductor-delivery'], byChannel.get(channels.webhook).id, 'the delivery id is the notification id')
    assert.equal(req.headers['x-opsconductor-event'], 'run.failed')
    assert.match(String(req.headers['content-type']), /^application\/json/)
    const body = JSON.parse(req.body)
    assert.deepEqual(Object.keys(body), ['event', 'severity', 'subject', 'text', 'link', 'facts', 'data'])
    assert.equal(body.event, 'run.failed')
    assert.equal(body.severity, 'error')
    assert.equal(body.link, link)
    assert.ok(body.subject.includes(jobName), body.subject)
    assert.equal(body.data.run_id, runId)
    assert.equal(body.data.job_id, jobId)
    assert.equal(body.data.status, 'failed')

    // Slack: an incoming-webhook body, { text, blocks } with Block Kit blocks.
    assert.equal(slack.received.length, 1, 'exactly one Slack post')
    assert.equal(slack.received[0]!.url, `/services/T0/B0/${slackToken}`)
    assert.match(String(slack.received[0]!.headers['content-type']), /^application\/json/)
    const sbody = JSON.parse(slack.received[0]!.body)
    assert.deepEqual(Object.keys(sbody).sort(), ['blocks', 'text'])
    assert.equal(typeof sbody.text, 'string')
    assert.ok(sbody.text.includes(jobName), sbody.text)
    assert.ok(Array.isArray(sbody.blocks) && sbody.blocks.length >= 3 && sbody.blocks.length <= 50, 'a Block Kit blocks array')
    const blockTypes = new Set(['header', 'section', 'actions', 'context', 'divider', 'image', 'rich_text'])
    for (const b of sbody.blocks) assert.ok(blockTypes.has(b.type), `a Block Kit block type: ${JSON.stringify(b)}`)
    const [header] = sbody.blocks
    assert.equal(header.type, 'header')
    assert.equal(header.text.type, 'plain_text')
    assert.ok(header.text.text.includes(jobName) && [...header.text.text].length <= 150, header.text.text)
    for (const s of sbody.blocks.filter((b: any) => b.type === 'section')) {
      assert.ok(s.text || s.fields, 'a section has text or fields')
      for (const t of [s.text, ...(s.fields ?? [])].filter(Boolean)) assert.ok(['mrkdwn', 'plain_text'].includes(t.type) && typeof t.text === 'string', JSON.stringify(t))
    }
    const fieldTexts = sbody.blocks.flatMap((b: any) => (b.fields ?? []).map((f: any) => f.text))
    assert.ok(fieldTexts.some((t: string) => t.includes('Job') && t.includes(jobName)), `a Job field: ${JSON.stringify(fieldTexts)}`)
    assert.ok(fieldTexts.some((t: string) => t.includes('Status') && t.includes('failed')), `a Status field: ${JSON.stringify(fieldTexts)}`)
    const buttons = sbody.blocks.filter((b: any) => b.type === 'actions').flatMap((b: any) => b.elements)
    assert.deepEqual(buttons.map((e: any) => [e.type, e.url]), [['button', link]], 'one button to the run')
    assert.equal(sbody.blocks.at(-1).type, 'context')

    // Teams: a message with one Adaptive Card 1.4 attachment.
    assert.equal(teams.received.length, 1, 'exactly one Teams post')
    assert.equal(teams.received[0]!.url, `/webhookb2/${teamsToken}`)
    const tbody = JSON.parse(teams.received[0]!.body)
    assert.equal(tbody.type, 'message')
    assert.equal(tbody.attachments.length, 1)
    const [att] = tbody.attachments
    assert.equal(att.contentType, 'application/vnd.microsoft.card.adaptive')
    assert.equal(att.contentUrl, null)
    const card = att.content
    assert.equal(card.type, 'AdaptiveCard')
    assert.equal(card.version, '1.4')
    assert.ok(Array.isArray(card.body) && card.body.length > 0)
    for (const el of card.body) assert.ok(['TextBlock', 'FactSet', 'ColumnSet', 'Container', 'Image', 'RichTextBlock'].includes(el.type), `an Adaptive Card 1.4 element: ${JSON.stringify(el)}`)
    assert.equal(card.body[0].type, 'TextBlock')
    assert.ok(card.body[0].text.includes(jobName), card.body[0].text)
    const facts = card.body.filter((e: any) => e.type === 'FactSet').flatMap((e: any) => e.facts)
    assert.ok(facts.some((f: any) => f.title === 'Job' && f.value === jobName), JSON.stringify(facts))
    assert.ok(facts.some((f: any) => f.title === 'Status' && f.value === 'failed'), JSON.stringify(facts))
    assert.deepEqual(card.actions, [{ type: 'Action.OpenUrl', title: 'Open in OpsConductor', url: link }])
  })

  test('2a. the receiver down for 30 s, then up: the message arrives once, the failures in the history', async () => {
    const rx = await receiverDown()
    const hmac = secret('t2a-hmac')
    const channelId = await main.created('/api/v1/notification-channels', webhookChannel(`outage ${tag()}`, `${rx.url}/hook`, hmac))
    const jobId = await failingJob(main, `outage-30s-${tag()}`, [channelId])
    const downSince = Date.now()
    const runId = await runToFailure(main, jobId)
    const [queued] = await eventually('a first failed attempt', async () => {
      const items = await notificationsOf(main, runId)
      return items.length === 1 && items[0].attempts.length >= 1 ? items : undefined
    })
    assert.equal(queued.attempts[0].outcome, 'failed')
    await sleep(Math.max(0, downSince + 30_000 - Date.now()))
    assert.equal(rx.received.length, 0)
    await rx.up()

    const [delivered] = await untilAll(main, runId, 1, 'delivered', 120_000)
    await sleep(SETTLE_MS)
    const n = await notification(main, delivered.id)
    assert.equal(n.status, 'delivered', JSON.stringify(n))
    assert.equal(rx.received.length, 1, 'the message arrives once')
    assert.equal(rx.received[0]!.headers['x-opsconductor-delivery'], n.id)
    assert.ok(signatureVerifies(hmac, rx.received[0]!), 'signed afresh on the attempt that got through')
    const outcomes = n.attempts.map((a: any) => a.outcome)
    assert.deepEqual(n.attempts.map((a: any) => a.attempt), outcomes.map((_: unknown, i: number) => i + 1), 'attempts numbered 1..n')
    assert.equal(outcomes.at(-1), 'delivered')
    assert.equal(outcomes.filter((o: string) => o === 'delivered').length, 1)
    assert.ok(outcomes.length >= 3, `retried during the outage: ${attemptsSummary(n)}`)
    for (const a of n.attempts.slice(0, -1)) {
      assert.equal(a.outcome, 'failed')
      assert.equal(a.http_status, null)
      assert.match(a.error, /refused/i, 'a failed attempt says why')
    }
    assert.equal(n.attempt_count, outcomes.length)
    assert.ok(n.attempt_count < MAX_ATTEMPTS + 1)
  })

  test('2b. the receiver down past the last retry: a dead letter; retry delivers it once; the history shows every attempt', async () => {
    const rx = await receiverDown()
    const channelId = await main.created('/api/v1/notification-channels', webhookChannel(`dead ${tag()}`, `${rx.url}/hook`))
    const jobId = await failingJob(main, `dead-letter-${tag()}`, [channelId])
    const runId = await runToFailure(main, jobId)

    const dead = await eventually(
      'the notification among the dead letters',
      async () => {
        const res = await main.api('GET', `/api/v1/notifications/dead-letters?run_id=${runId}`)
        assert.equal(res.status, 200, res.text)
        return res.body.items.length === 1 ? res.body.items[0] : undefined
      },
      150_000,
      1_000,
    )
    assert.equal(dead.status, 'dead')
    assert.equal(dead.channel_id, channelId)
    assert.equal(dead.max_attempts, MAX_ATTEMPTS)
    assert.equal(dead.attempt_count, MAX_ATTEMPTS)
    assert.deepEqual(attemptsSummary(dead), Array.from({ length: MAX_ATTEMPTS }, (_, i) => `${i + 1}:failed`))
    for (const a of dead.attempts) assert.match(a.error, /refused/i)
    assert.match(dead.last_error, /refused/i)
    assert.equal(rx.received.length, 0)
    const status = await main.api('GET', '/api/v1/notification/status')
    assert.equal(status.status, 200)
    assert.ok(status.body.dead >= 1, JSON.stringify(status.body))

    await rx.up()
    const retried = await main.api('POST', `/api/v1/notifications/${dead.id}/retry`)
    assert.equal(retried.status, 200, retried.text)
    assert.ok(['pending', 'sending', 'delivered'].includes(retried.body.status), retried.text)
    await untilAll(main, runId, 1, 'delivered')
    await sleep(SETTLE_MS)
    assert.equal(rx.received.length, 1, 'the retry delivers it once')
    assert.equal(rx.received[0]!.headers['x-opsconductor-delivery'], dead.id)

    const history = await main.api('GET', `/api/v1/notifications?run_id=${runId}`)
    assert.equal(history.status, 200)
    assert.equal(history.body.items.length, 1)
    const n = history.body.items[0]
    assert.equal(n.status, 'delivered')
    assert.deepEqual(attemptsSummary(n), [...Array.from({ length: MAX_ATTEMPTS }, (_, i) => `${i + 1}:failed`), `${MAX_ATTEMPTS + 1}:delivered/200`])
    for (const a of n.attempts.slice(0, -1)) assert.match(a.error, /refused/i, 'each failed attempt says why')
    assert.equal(n.attempts.at(-1).error, null)
    assert.ok(n.attempts.every((a: any) => !Number.isNaN(Date.parse(a.at))), 'each attempt has its time')
    const stillDead = await main.api('GET', `/api/v1/notifications/dead-letters?run_id=${runId}`)
    assert.deepEqual(stillDead.body.items, [], 'no longer a dead letter')
    const again = await main.api('POST', `/api/v1/notifications/${dead.id}/retry`)
    assert.equal(again.status, 409, 'a delivered message cannot be retried')
  })

  /** A controller of its own (and a database of its own) for a test that kills it. */
  async function crashController(name: string): Promise<Controller> {
    // A short lease so the lost send is taken back soon; a send is aborted at half of it.
    const c = await Controller.create(name, { OPSC_NOTIFY_LEASE_MS: '20000' })
    crashControllers.push(c)
    return c
  }

  test('3a. kill -9 after the run failed, the receiver refusing: after the restart it is delivered exactly once', { skip: noKill }, async () => {
    const c = await crashController('crash-a')
    const rx = await receiverDown()
    const hmac = secret('t3a-hmac')
    const channelId = await c.created('/api/v1/notification-channels', webhookChannel(`crash-a ${tag()}`, `${rx.url}/hook`, hmac))
    const jobId = await failingJob(c, `crash-before-delivery-${tag()}`, [channelId])
    const runId = await runToFailure(c, jobId)
    const [queued] = await eventually('the notification queued, its first attempt refused', async () => {
      const items = await notificationsOf(c, runId)
      return items.length === 1 && items[0].attempts.some((a: any) => a.outcome === 'failed') ? items : undefined
    })

    await c.kill()
    await rx.up()
    await sleep(1_000)
    assert.equal(rx.received.length, 0, 'nothing delivers while the controller is dead')
    await c.start()

    await untilAll(c, runId, 1, 'delivered', 120_000)
    await sleep(SETTLE_MS)
    const n = await notification(c, queued.id)
    assert.equal(n.status, 'delivered')
    assert.equal(rx.received.length, 1, 'exactly one delivery after the restart')
    assert.equal(rx.received[0]!.headers['x-opsconductor-delivery'], queued.id)
    assert.ok(signatureVerifies(hmac, rx.received[0]!))
    assert.equal(JSON.parse(rx.received[0]!.body).data.run_id, runId)
    const outcomes = n.attempts.map((a: any) => a.outcome)
    assert.equal(outcomes.at(-1), 'delivered')
    assert.equal(outcomes.filter((o: string) => o === 'delivered').length, 1, attemptsSummary(n).join(' '))
    assert.equal(outcomes.length, n.attempt_count)
  })

  test('3b. kill -9 while the receiver holds the request: after the restart the lease runs out and it is redelivered with the same delivery id', { skip: noKill }, async () => {
    const c = await crashController('crash-b')
    const rx = await receiverUp()
    const hmac = secret('t3b-hmac')
    // The first request is held unanswered: the controller is killed in the middle of the delivery.
    rx.respond = () => (rx.received.length === 1 ? 'hold' : { status: 200, body: 'ok' })
    const channelId = await c.created('/api/v1/notification-channels', webhookChannel(`crash-b ${tag()}`, `${rx.url}/hook`, hmac))
    const jobId = await failingJob(c, `crash-mid-delivery-${tag()}`, [channelId])
    const runId = await runToFailure(c, jobId)
    await eventually('the request held at the receiver', async () => rx.heldCount === 1)
    const [sending] = await notificationsOf(c, runId)
    assert.equal(sending.status, 'sending', 'killed in the middle of the send')
    assert.ok(sending.claimed_by && sending.lease_until)

    await c.kill()
    await eventually('the receiver sees the dead sender hang up', async () => rx.abandoned.length === 1, 30_000)
    await c.start()

    await untilAll(c, runId, 1, 'delivered', 120_000)
    await sleep(SETTLE_MS)
    assert.equal(rx.received.length, 2, 'at least once at the wire: the lost send, then the redelivery')
    const ids = rx.received.map((r) => r.headers['x-opsconductor-delivery'])
    assert.deepEqual(ids, [sending.id, sending.id], 'both carry the notification id')
    assert.ok(rx.received.every((r) => signatureVerifies(hmac, r)), 'both signed')
    assert.equal(rx.received[0]!.body, rx.received[1]!.body, 'the same message')
    // What a de-duplicating receiver keeps: one message.
    assert.equal(new Set(ids).size, 1)

    const n = await notification(c, sending.id)
    assert.equal(n.status, 'delivered')
    assert.deepEqual(n.attempts.map((a: any) => a.outcome), ['failed', 'delivered'])
    assert.match(n.attempts[0].error, /lease expired/)
  })

  test('4. a job that prints secrets: its messages carry them masked', { skip: noSmtp }, async () => {
    const param = secret('t4-secret-param')
    const credToken = secret('t4-credential-token')
    const hmac = secret('t4-hmac')
    const urlToken = secret('t4-webhook-url-token')
    const apiKey = secret('t4-webhook-secret-header')
    const credential = `export-api-${tag()}`
    assert.equal((await main.api('POST', '/api/v1/credentials', { type: 'http_auth', name: credential, scheme: 'bearer', token: credToken })).status, 201)
    const rx = await receiverUp()
    // A receiver that echoes its URL (with the token) in its answer, which the history keeps.
    rx.respond = (req) => ({ status: 200, body: `accepted at ${req.url}` })
    const mailbox = `secops-${tag()}@example.test`
    const channelIds = [
      await main.created('/api/v1/notification-channels', { name: `mail4 ${tag()}`, type: 'email', config: { to: [mailbox] } }),
      await main.created('/api/v1/notification-channels', {
        name: `hook4 ${tag()}`,
        type: 'webhook',
        secret: { url: `${rx.url}/in/${urlToken}?token=${urlToken}`, hmac_secret: hmac, headers: { 'X-Api-Key': apiKey } },
      }),
    ]
    const jobName = `secret-export-${tag()}`
    const jobId = await failingJob(main, jobName, channelIds, {
      events: ['run.failed', 'step.failed'],
      definition: {
        parameters: [{ name: 'api_key', type: 'secret', required: true }],
        steps: [{ id: 'export', type: 'http.get', url: `${service.url}/echo?key={{ params.api_key }}`, credential }],
      },
    })
    const runId = await runToFailure(main, jobId, { parameters: { api_key: param } })

    // The secrets were really in play: the service got them and printed them into the step's output…
    assert.deepEqual(echoed.at(-1), { authorization: `Bearer ${credToken}`, key: param })
    const steps = await main.api('GET', `/api/v1/runs/${runId}/steps`)
    assert.equal(steps.status, 200)
    const output = await main.api('GET', `/api/v1/runs/${runId}/steps/${steps.body.items[0].id}/output`)
    assert.equal(output.status, 200)
    assert.ok(output.text.includes('you_sent'), output.text)
    // …which was stored masked.
    assert.ok(!output.text.includes(param) && !output.text.includes(credToken), output.text)
    assert.match(output.text, /\*{4}/)

    // run.failed and step.failed, on both channels.
    const items = await untilAll(main, runId, 4, 'delivered')
    await sleep(SETTLE_MS)
    assert.deepEqual(items.map((n) => n.event).sort(), ['run.failed', 'run.failed', 'step.failed', 'step.failed'])
    const mails = smtp!.mails.filter((m) => m.to.includes(mailbox))
    assert.equal(mails.length, 2)
    const bodies = [...mails.flatMap((m) => [m.raw, m.text, m.html]), ...rx.received.map((r) => r.body)]
    assert.equal(rx.received.length, 2)
    // The output tail made it into the messages, masked.
    assert.ok(mails.every((m) => m.text.includes('you_sent') && m.text.includes('****')), mails.map((m) => m.text).join('\n---\n'))
    assert.ok(rx.received.every((r) => r.headers['x-api-key'] === apiKey && signatureVerifies(hmac, r)))
    for (const [label, value] of [['secret parameter', param], ['credential token', credToken], ['HMAC secret', hmac], ['URL token', urlToken], ['secret header', apiKey], ['SMTP password', SMTP_PASSWORD]]) {
      for (const b of bodies) assert.ok(!b.includes(value!), `the ${label} in a message: ${b.slice(0, 2000)}`)
    }
    // The receiver echoed the URL token; the history keeps its answer masked.
    for (const n of items) {
      const full = await notification(main, n.id)
      if (full.channel_id !== channelIds[1]) continue
      const answer: string = full.attempts.at(-1).response
      assert.ok(answer.startsWith('accepted at ') && answer.includes('***') && !answer.includes(urlToken), answer)
    }
  })
})

test('4. no secret in any received message, controller log (stdout, stderr) or API response', async () => {
  // Every notification the API shows, with its payload and attempts, joins the API responses swept.
  for (const c of [main, ...crashControllers]) {
    if (!c.processes.some((p) => p.proc.exitCode === null && p.proc.signalCode === null)) continue
    let cursor: string | undefined
    do {
      const page = await c.api('GET', `/api/v1/notifications?limit=100${cursor ? `&cursor=${cursor}` : ''}`)
      assert.equal(page.status, 200, page.text)
      for (const n of page.body.items) await notification(c, n.id)
      cursor = page.body.next ?? undefined
    } while (cursor)
    await c.api('GET', '/api/v1/notifications/dead-letters')
    await c.api('GET', '/api/v1/notification/status')
  }
  const received = [...(smtp?.mails.map((m) => m.raw) ?? []), ...receivers.flatMap((r) => r.received.map((q) => q.body))]
  const logs = [main, ...crashControllers].map((c) => ({ name: c.name, text: c.logText() }))
  assert.ok(SECRETS.size >= 6, `${SECRETS.size} secrets tracked`)
  assert.ok(received.length >= 5, `${received.length} received messages swept`)
  assert.ok(responses.length >= 30, `${responses.length} API responses swept`)
  assert.ok(logs[0]!.text.includes('notify.delivered'), 'the controller logged its deliveries (the log is really read)')
  for (const [label, value] of SECRETS) {
    for (const body of received) assert.ok(!body.includes(value), `${label} in a received message: ${body.slice(0, 1000)}`)
    for (const log of logs) {
      const at = log.text.indexOf(value)
      assert.equal(at, -1, `${label} in the ${log.name} controller's log: …${log.text.slice(Math.max(0, at - 300), at + 100)}`)
    }
    for (const r of responses) assert.ok(!r.text.includes(value), `${label} in the response to ${r.call}: ${r.text.slice(0, 1000)}`)
  }
})
