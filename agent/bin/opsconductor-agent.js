#!/usr/bin/env node
// Runs the TypeScript sources through tsx; the packaged agent runs the esbuild bundle instead.
import { register } from 'tsx/esm/api'

register()
await import('../src/cli.ts')
