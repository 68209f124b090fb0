import assert from 'node:assert/strict'
import { test } from 'node:test'
import { useApiTestApp } from '../../../test/harness/api-app.ts'

// Channel names for everyone who picks channels (rules, preferences) without administering them.

const api = useApiTestApp(['admin', 'viewer'])
const as = api.as
const PATH = '/api/v1/notification-channels'

test('GET /directory: id, name and type of every live channel, by name, to any role; never config or secrets', async () => {
  const hook = await as('admin').post(PATH, { name: 'ops hook', type: 'webhook', config: { headers: { 'X-Team': 'ops' } }, secret: { url: 'https://hooks.example.test/T0K3N', hmac_secret: 'a sixteen+ char secret' } })
  assert.equal(hook.status, 201, JSON.stringify(hook.body))
  const mail = await as('admin').post(PATH, { name: 'Mail ops', type: 'email', config: { to: ['ops@example.test'] } })
  assert.equal(mail.status, 201, JSON.stringify(mail.body))
  const gone = await as('admin').post(PATH, { name: 'gone', type: 'slack', secret: { url: 'https://hooks.slack.test/x' } })
  assert.equal((await as('admin').del(`${PATH}/${gone.body.id}`)).status, 200)

  const res = await as('viewer').get(`${PATH}/directory`)
  assert.equal(res.status, 200, JSON.stringify(res.body))
  assert.deepEqual(res.body, {
    items: [
      { id: mail.body.id, name: 'Mail ops', type: 'email' },
      { id: hook.body.id, name: 'ops hook', type: 'webhook' },
    ],
  })
  const text = JSON.stringify(res.body)
  for (const secret of ['T0K3N', 'ops@example.test', 'X-Team']) assert.ok(!text.includes(secret), `${secret} is not in the directory`)
  // The rest of the channels API stays admin only.
  assert.equal((await as('viewer').get(PATH)).status, 403)
  assert.equal((await as('viewer').get(`${PATH}/${hook.body.id}`)).status, 403)
  assert.equal((await api.app.request(`${PATH}/directory`)).status, 401)
})
