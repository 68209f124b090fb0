import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import type { Browser, Page } from 'playwright-core'
import { openCredential } from '../../controller/src/credentials/service.ts'
import { generateCertificate, generateSshKey, hasOpenssl, hasSshKeygen } from '../harness/keys.ts'
import { adminToken, apiCall, assertAccessible, assertClean, launchBrowser, screenshot, skipUi, startUiController, type UiController } from './harness.ts'
import { addUsers, checkBothThemes, checkPhone, session } from './targets-helpers.ts'

// The credential vault in the browser: a form per type, secrets write-only (never shown, empty on
// edit, kept unless replaced), the server's 400 by its field, who uses a credential, delete with
// confirmation (refused while in use), and what operators and viewers may see.

let ui: UiController
let browser: Browser
let token: string

const api = async (method: string, path: string, body?: unknown) => {
  const res = await apiCall(ui.base, method, path, token, body)
  assert.ok(res.status < 300, `${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as any
}
const byName = async (name: string) => (await api('GET', `/api/v1/credentials?q=${encodeURIComponent(name)}`)).items.find((c: { name: string }) => c.name === name)
const secretsOf = async (id: string) => (await openCredential(ui.controller.ctx, id)) as unknown as Record<string, unknown>

before(async () => {
  if (skipUi) return
  ui = await startUiController()
  browser = await launchBrowser()
  token = await adminToken(ui.base)
  await addUsers(ui)
})
after(async () => {
  await browser?.close()
  await ui?.stop()
})

/** The page must not contain a secret anywhere: text, attributes or input values. */
async function assertNotInPage(page: Page, secret: string, what: string) {
  const found = await page.evaluate((s) => {
    const html = document.documentElement.outerHTML
    const values = [...document.querySelectorAll('input, textarea')].map((e) => (e as HTMLInputElement).value)
    return html.includes(s) || values.some((v) => v.includes(s))
  }, secret)
  assert.equal(found, false, `${what} appears in the page`)
}

async function newCredential(page: Page, name: string, type: string) {
  await page.goto(`${ui.base}/credentials/new`)
  await page.getByRole('heading', { name: 'New credential' }).waitFor()
  await page.getByLabel('Name', { exact: true }).fill(name)
  await page.getByLabel('Type', { exact: true }).selectOption(type)
}

describe('credentials UI', { skip: skipUi }, () => {
  test('empty vault, then an SSH key pasted with its passphrase: the page shows its fingerprint, never the key', { skip: !hasSshKeygen }, async () => {
    const passphrase = 'key passphrase 7Hs'
    const key = generateSshKey('ed25519', { passphrase })
    const { context, page, problems } = await session(browser, ui, 'admin', 1280, '/credentials')
    try {
      await page.getByText('No credentials yet').waitFor()
      await checkBothThemes(page, 'credentials-empty')
      await newCredential(page, 'deploy-key', 'ssh_key')
      await page.getByLabel('Username').fill('deploy')
      await page.getByLabel('Private key', { exact: true }).fill(key.privateKey)
      await page.getByLabel('Key passphrase (optional)').fill(passphrase)
      await page.getByLabel('Description').fill('CI deploys')
      await checkBothThemes(page, 'credential-new-ssh-key')
      await page.getByRole('button', { name: 'Create credential' }).click()

      await page.getByRole('heading', { name: 'deploy-key' }).waitFor()
      await page.getByRole('status').filter({ hasText: 'Credential created.' }).waitFor()
      await page.getByText(key.fingerprint).waitFor()
      await page.getByText('ssh-ed25519', { exact: true }).waitFor()
      await assertNotInPage(page, key.privateKey.split('\n')[1]!, 'the private key')
      await assertNotInPage(page, passphrase, 'the passphrase')
      const stored = await byName('deploy-key')
      assert.equal(stored.has_private_key, true)
      assert.equal(stored.has_passphrase, true)
      assert.equal(stored.username, 'deploy')
      assert.equal((await secretsOf(stored.id)).private_key, key.privateKey)
      await checkBothThemes(page, 'credential-detail')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('edit: secrets are empty with "leave empty to keep"; saving other fields keeps them, a new one replaces them', async () => {
    const created = await api('POST', '/api/v1/credentials', { name: 'db-main', type: 'database', driver: 'postgres', host: 'db.example.test', database: 'app', username: 'app', password: 'old db password 1' })
    const { context, page, problems } = await session(browser, ui, 'admin', 1280, `/credentials/${created.id}/edit`)
    try {
      await page.getByRole('heading', { name: 'Edit db-main' }).waitFor()
      const password = page.getByLabel('Password', { exact: true })
      assert.equal(await password.inputValue(), '')
      assert.equal(await password.getAttribute('type'), 'password')
      assert.match((await page.locator('.field', { has: password }).locator('.hint').textContent()) ?? '', /Stored — leave empty to keep/)
      assert.equal(await page.getByLabel('Host').inputValue(), 'db.example.test')
      await assertNotInPage(page, 'old db password 1', 'the stored password')
      await checkBothThemes(page, 'credential-edit')

      await page.getByLabel('Port (optional)').fill('6432')
      await page.getByLabel('TLS').selectOption('require')
      await page.getByRole('button', { name: 'Save changes' }).click()
      await page.getByRole('status').filter({ hasText: 'Credential saved.' }).waitFor()
      let stored = await byName('db-main')
      assert.equal(stored.port, 6432)
      assert.equal(stored.tls_mode, 'require')
      assert.equal((await secretsOf(created.id)).password, 'old db password 1', 'the password is kept')

      await page.getByRole('link', { name: 'Edit', exact: true }).click()
      await page.getByLabel('Password', { exact: true }).fill('new db password 2')
      await page.getByLabel('Port (optional)').fill('')
      await page.getByRole('button', { name: 'Save changes' }).click()
      await page.getByRole('status').filter({ hasText: 'Credential saved.' }).waitFor()
      stored = await byName('db-main')
      assert.equal(stored.port, undefined, 'an emptied optional field is cleared')
      assert.equal((await secretsOf(created.id)).password, 'new db password 2')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
  })

  test('per-type forms: WinRM, HTTP headers, SNMP v3 and a client certificate from files', async () => {
    const { context, page, problems } = await session(browser, ui, 'admin', 1280, '/credentials')
    try {
      await newCredential(page, 'win-svc', 'winrm')
      await page.getByLabel('Username').fill('svc-ops')
      await page.getByLabel('Password', { exact: true }).fill('winrm secret 9')
      await page.getByLabel('Domain (optional)').fill('CORP')
      await page.getByRole('button', { name: 'Create credential' }).click()
      await page.getByRole('heading', { name: 'win-svc' }).waitFor()
      assert.deepEqual(
        (({ username, domain, auth, transport, has_password }) => ({ username, domain, auth, transport, has_password }))(await byName('win-svc')),
        { username: 'svc-ops', domain: 'CORP', auth: 'ntlm', transport: 'https', has_password: true },
      )

      await newCredential(page, 'api-headers', 'http_auth')
      await page.getByLabel('Scheme').selectOption('headers')
      await page.getByLabel('Header 1 name').fill('X-Api-Key')
      await page.getByLabel('Header 1 value').fill('header secret 1')
      await page.getByRole('button', { name: 'Add header' }).click()
      await page.getByLabel('Header 2 name').fill('X-Tenant')
      await page.getByLabel('Header 2 value').fill('acme')
      await checkBothThemes(page, 'credential-new-http-headers')
      await page.getByRole('button', { name: 'Create credential' }).click()
      await page.getByRole('heading', { name: 'api-headers' }).waitFor()
      await page.getByText('X-Api-Key, X-Tenant').waitFor()
      await assertNotInPage(page, 'header secret 1', 'a header value')
      assert.deepEqual((await secretsOf((await byName('api-headers')).id)).headers, { 'X-Api-Key': 'header secret 1', 'X-Tenant': 'acme' })

      await newCredential(page, 'snmp-core', 'snmp')
      await page.getByLabel('SNMP version').selectOption('v3')
      await page.getByLabel('Username').fill('monitor')
      await page.getByLabel('Authentication protocol').selectOption('sha')
      await page.getByLabel('Authentication password (optional)').fill('auth pass 12')
      await page.getByLabel('Privacy protocol').selectOption('aes')
      await page.getByLabel('Privacy password (optional)').fill('priv pass 34')
      await page.getByRole('button', { name: 'Create credential' }).click()
      await page.getByRole('heading', { name: 'snmp-core' }).waitFor()
      assert.equal((await byName('snmp-core')).security_level, 'authPriv')

      if (hasOpenssl) {
        const cert = generateCertificate({ cn: 'client.ops.test' })
        await newCredential(page, 'mtls-client', 'certificate')
        await page.getByLabel('Load certificate (PEM) from a file').setInputFiles({ name: 'client.pem', mimeType: 'application/x-pem-file', buffer: Buffer.from(cert.certificate) })
        await page.getByLabel('Load private key (PEM) from a file').setInputFiles({ name: 'client.key', mimeType: 'application/x-pem-file', buffer: Buffer.from(cert.privateKey) })
        assert.equal(await page.getByLabel('Certificate (PEM)', { exact: true }).inputValue(), cert.certificate)
        await page.getByRole('button', { name: 'Create credential' }).click()
        await page.getByRole('heading', { name: 'mtls-client' }).waitFor()
        await page.getByText(cert.fingerprint).waitFor()
        await page.getByText(/CN=client\.ops\.test/).first().waitFor()
      }

      await page.goto(`${ui.base}/credentials`)
      await page.getByRole('link', { name: 'win-svc' }).waitFor()
      assert.match((await page.getByRole('row', { name: /win-svc/ }).textContent()) ?? '', /CORP\\svc-ops · NTLM · https/)
      await page.getByLabel('Type').selectOption('snmp')
      await page.getByRole('link', { name: 'snmp-core' }).waitFor()
      await page.getByRole('link', { name: 'win-svc' }).waitFor({ state: 'detached' })
      await page.getByLabel('Type').selectOption('')
      await page.getByRole('link', { name: 'win-svc' }).waitFor()
      await checkBothThemes(page, 'credentials-list')
      await assertClean(page, problems)
    } finally {
      await context.close()
    }
    await checkPhone(browser, ui, '/credentials', 'credentials-list', (p) => p.getByRole('link', { name: 'win-svc' }).waitFor())
    await checkPhone(browser, ui, '/credentials/new', 'credential-new', (p) => p.getByRole('heading', { name: 'New credential' }).waitFor())
  })

  test('the server\'s 400 shows by the field it names', { skip: !hasSshKeygen }, async () => {
    const key = generateSshKey('ed25519', { passphrase: 'right passphrase 1' })
    const { context, page, problems } = await session(browser, ui, 'admin', 1280, '/credentials')
    try {
      await newCredential(page, 'bad-key', 'ssh_key')
      await page.getByLabel('Username').fill('deploy')
      await page.getByLabel('Private key', { exact: true }).fill(key.privateKey)
      await page.getByLabel('Key passphrase (optional)').fill('wrong passphrase 2')
      await page.getByRole('button', { name: 'Create credential' }).click()
      const note = page.locator('.field.invalid', { has: page.getByLabel('Key passphrase (optional)') }).locator('.field-error')
      await note.waitFor()
      assert.match((await note.textContent()) ?? '', /passphrase/)
      await page.getByRole('alert').filter({ hasText: 'Could not save the credential' }).waitFor()
      await checkBothThemes(page, 'credential-form-400')

      await newCredential(page, 'api-key-only', 'http_auth')
      await page.getByLabel('Scheme').selectOption('api_key')
      await page.getByLabel('API key').fill('an api key 123')
      // Empty required fields are named before anything is sent…
      await page.getByRole('button', { name: 'Create credential' }).click()
      const header = page.locator('.field.invalid', { has: page.getByLabel('Header name') }).locator('.field-error')
      await header.waitFor()
      assert.equal(await header.textContent(), 'required')
      // …and the server's own rule for the value by the same field.
      await page.getByLabel('Header name').fill('X Api Key')
      await page.getByRole('button', { name: 'Create credential' }).click()
      await page.getByRole('alert').filter({ hasText: 'Could not save the credential' }).waitFor()
      assert.equal(await header.textContent(), 'not a valid HTTP header name')
      assert.equal(await page.evaluate(() => (document.activeElement as HTMLInputElement | null)?.value), 'X Api Key', 'the field to fix has the focus')
      assert.equal(await byName('api-key-only'), undefined)
      await assertClean(page, problems, (t) => /status of 400/.test(t))
    } finally {
      await context.close()
    }
  })

  test('used by: the targets are listed; delete is confirmed, refused while in use, then done', async () => {
    const cred = await api('POST', '/api/v1/credentials', { name: 'shared-login', type: 'ssh_password', username: 'ops', password: 'shared password 1' })
    const t1 = await api('POST', '/api/v1/targets', { name: 'uses-shared-1', address: '10.8.0.1', connection: { type: 'ssh', credential_id: cred.id } })
    const { context, page, problems } = await session(browser, ui, 'admin', 1280, `/credentials/${cred.id}`)
    try {
      await page.getByRole('heading', { name: 'shared-login' }).waitFor()
      await page.getByRole('link', { name: 'uses-shared-1' }).waitFor()
      await page.getByRole('button', { name: 'Delete' }).click()
      const dialog = page.getByRole('alertdialog', { name: 'Delete credential' })
      await dialog.getByText('It is still used by 1 target, so the controller will refuse').waitFor()
      await assertAccessible(page, 'the delete dialog')
      await screenshot(page, 'credential-delete-dialog')
      await dialog.getByRole('button', { name: 'Delete credential' }).click()
      const refusal = dialog.getByRole('alert')
      await refusal.waitFor()
      assert.match((await refusal.textContent()) ?? '', /CONFLICT.*credential shared-login is used by 1 target\(s\): uses-shared-1/)
      await screenshot(page, 'credential-delete-refused')
      await page.keyboard.press('Escape')
      await dialog.waitFor({ state: 'hidden' })
      assert.equal(await page.evaluate(() => document.activeElement?.textContent), 'Delete', 'focus returns to the Delete button')

      await api('DELETE', `/api/v1/targets/${t1.id}`)
      await page.reload()
      await page.getByText('No target uses this credential.').waitFor()
      await page.getByRole('button', { name: 'Delete' }).click()
      await dialog.getByRole('button', { name: 'Delete credential' }).click()
      await page.getByRole('heading', { name: 'Credentials' }).waitFor()
      assert.equal(await byName('shared-login'), undefined)
      await assertClean(page, problems, (t) => /status of 409/.test(t))
    } finally {
      await context.close()
    }
  })

  test('operators read (no New, Edit or Delete) and pick credentials on targets; viewers are refused', async () => {
    const id = (await byName('win-svc')).id
    const op = await session(browser, ui, 'olga', 1280, '/credentials')
    try {
      await op.page.getByRole('link', { name: 'win-svc' }).waitFor()
      assert.equal(await op.page.getByRole('link', { name: 'New credential' }).count(), 0)
      await op.page.getByRole('link', { name: 'win-svc' }).click()
      await op.page.getByRole('heading', { name: 'win-svc' }).waitFor()
      await op.page.getByText('stored').first().waitFor()
      assert.equal(await op.page.getByRole('link', { name: 'Edit', exact: true }).count(), 0)
      assert.equal(await op.page.getByRole('button', { name: 'Delete' }).count(), 0)
      await checkBothThemes(op.page, 'credential-detail-operator')
      // The target form offers the WinRM credentials.
      await op.page.goto(`${ui.base}/targets/new`)
      await op.page.getByRole('radio', { name: 'WinRM (Windows)' }).check()
      const options = await op.page.getByLabel('WinRM credential').locator('option').allTextContents()
      assert.ok(options.some((o) => o.startsWith('win-svc — WinRM')), options.join(' | '))
      assert.ok(!options.some((o) => o.startsWith('deploy-key')), 'SSH keys are not offered for WinRM')
      await assertClean(op.page, op.problems)
    } finally {
      await op.context.close()
    }
    const viewer = await session(browser, ui, 'viktor', 1280, `/credentials/${id}`)
    try {
      const panel = viewer.page.getByRole('alert').filter({ hasText: 'Could not load the credential' })
      await panel.waitFor()
      assert.match((await panel.textContent()) ?? '', /FORBIDDEN/)
      assert.equal(await viewer.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Credentials' }).count(), 0)
      await checkBothThemes(viewer.page, 'credential-viewer-forbidden')
      await assertClean(viewer.page, viewer.problems, (t) => /status of 403/.test(t))
    } finally {
      await viewer.context.close()
    }
  })
})
