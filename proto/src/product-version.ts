import { readFileSync } from 'node:fs'

/** The product version controller and agent share. */
// Server bundles replace this identifier at build time (esbuild `define`); source runs read package.json.
declare const __OPSC_VERSION__: string | undefined

export const VERSION: string =
  typeof __OPSC_VERSION__ === 'string'
    ? __OPSC_VERSION__
    : (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
