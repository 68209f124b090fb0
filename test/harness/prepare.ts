// Run once by test/run-tests.js before the test files start: clears leftovers and builds the template.
import { dropStaleTestDatabases, ensurePgliteSnapshot, ensureTemplate, testBackend } from './db.ts'

const backend = await testBackend()
if (backend === 'postgres') {
  const dropped = await dropStaleTestDatabases()
  const template = await ensureTemplate()
  process.stdout.write(`# test database: postgres (template ${template}${dropped ? `, dropped ${dropped} stale` : ''})\n`)
} else {
  process.stdout.write(`# test database: embedded PGlite (snapshot ${await ensurePgliteSnapshot()})\n`)
}
