#!/usr/bin/env node
// `npm run build:server`: esbuild bundles of the controller and agent CLIs under dist/.
// Dependencies stay external (installed next to the bundle by npm); the self-contained agent
// (its dependencies, node-pty and Node inside) is `npm run package:agent` (agent/bundle.js).
import { cpSync, readFileSync, rmSync } from 'node:fs'
import path from 'node:path'
import { build } from 'esbuild'

const root = path.resolve(import.meta.dirname, '..')
const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'))

const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  sourcemap: true,
  logLevel: 'warning',
  define: { __OPSC_VERSION__: JSON.stringify(version) },
  banner: { js: '#!/usr/bin/env node' },
}

rmSync(path.join(root, 'dist/controller'), { recursive: true, force: true })
rmSync(path.join(root, 'dist/agent'), { recursive: true, force: true })
await build({ ...common, entryPoints: [path.join(root, 'controller/src/cli.ts')], outfile: path.join(root, 'dist/controller/opsconductor.mjs') })
// The migrator reads SQL files at run time; the bundle finds them beside itself (OPSC_MIGRATIONS_DIR).
cpSync(path.join(root, 'controller/src/db/migrations'), path.join(root, 'dist/controller/migrations'), { recursive: true })
await build({ ...common, entryPoints: [path.join(root, 'agent/src/cli.ts')], outfile: path.join(root, 'dist/agent/opsconductor-agent.mjs') })
console.log(`built dist/controller/opsconductor.mjs and dist/agent/opsconductor-agent.mjs (${version})`)
