#!/usr/bin/env node
// Runs the TypeScript sources through tsx; packaged installs run the esbuild bundle instead.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli.ts')
