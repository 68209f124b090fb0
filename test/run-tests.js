#!/usr/bin/env node
// `npm test`: every *.test.ts in the repository through Node's own test runner (TypeScript via tsx).
// Each file runs in its own process with its own database (see test/harness/db.ts).
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import path from 'node:path'

const ROOTS = ['proto', 'controller', 'agent', 'ui/src', 'test']
const SKIP = new Set(['node_modules', 'dist', 'gen', 'bench'])

function collect(dir, out) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(entry.name)) continue
    const full = path.join(dir, entry.name)
    if (entry.isDirectory()) collect(full, out)
    else if (/\.test\.tsx?$/.test(entry.name)) out.push(full)
  }
  return out
}

const filters = process.argv.slice(2)
const files = ROOTS.flatMap((root) => collect(root, [])).filter((f) => filters.length === 0 || filters.some((p) => f.includes(p)))
  // OPSC_TEST_SKIP=test/ui,test/packaging: folders whose tests do not depend on the database backend
  // (CI runs them once, in the Postgres pass).
  .filter((f) => !(process.env.OPSC_TEST_SKIP ?? '').split(',').some((dir) => dir && f.startsWith(path.normalize(dir) + path.sep)))
if (files.length === 0) {
  console.error('no test files matched')
  process.exit(1)
}

const prepare = spawnSync(process.execPath, ['--import', 'tsx', 'test/harness/prepare.ts'], { stdio: 'inherit' })
if (prepare.status !== 0) process.exit(prepare.status ?? 1)

const args = ['--import', 'tsx', '--test', '--test-timeout=600000', `--test-concurrency=${process.env.OPSC_TEST_CONCURRENCY ?? 2}`, ...files]
const run = spawnSync(process.execPath, args, { stdio: 'inherit' })
process.exit(run.status ?? 1)
