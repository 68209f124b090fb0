import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { after, before, test } from 'node:test'
import { createTestContext, type TestContext } from '../../../test/harness/context.ts'
import { SecretMasker } from '../../../proto/src/masking.ts'
import { createJob } from '../jobs/service.ts'
import { readOutput } from './output.ts'
import { OutputRows, StepOutputWriter } from './output-sink.ts'
import { run, stepRun } from './runs.sql.ts'

let t: TestContext
let stepRunId: string
before(async () => {
  t = await createTestContext()
  const job = await createJob(t.ctx, undefined, { name: 'sink', steps: [{ type: 'wait', seconds: 1 }] })
  const runId = randomUUID()
  await t.ctx.db.insert(run).values({ id: runId, jobId: job.id, jobVersion: 1, jobName: 'sink', status: 'running', parameters: {}, trigger: 'manual', createdAt: new Date() })
  stepRunId = randomUUID()
  await t.ctx.db.insert(stepRun).values({ id: stepRunId, runId, stepIndex: 0, stepId: 'step1', stepType: 'wait', status: 'running', availableAt: new Date(), transport: 'controller' })
})
after(() => t?.close())

test('controller-side output: a secret split across writes is masked, streams stay apart, the cap truncates and says so', async () => {
  const writer = new StepOutputWriter(new OutputRows(t.ctx), stepRunId, new SecretMasker(['hunter2-secret']), 40)
  writer.write('stdout', 'user=admin pass=hunter2')
  writer.write('stdout', '-secret done\n')
  writer.write('stderr', 'warning\n')
  writer.write('stdout', 'x'.repeat(100))
  const { outputBytes, truncated } = await writer.close()
  const rows = await readOutput(t.ctx.db, stepRunId)
  const text = (stream: number) => Buffer.concat(rows.filter((r) => r.stream === stream).map((r) => r.data)).toString()
  assert.equal(text(1), `user=admin pass=**** done\n${'x'.repeat(40 - 26 - 8)}`)
  assert.equal(text(2), 'warning\n')
  assert.equal(outputBytes, 40)
  assert.equal(truncated, true)
  assert.deepEqual(rows.map((r) => r.seq), rows.map((_, i) => i + 1), 'seqs are dense from 1')
})
