// Types for build.js (plain ESM), for the TypeScript tests.
export declare const SERVICE_ID: string
export declare const ENTRY: string
export declare const NODE_VERSION: string
export declare const DEFAULT_CACHE_DIR: string
export interface PinnedTarball {
  integrity: string
  files: Record<string, { as: string; sha256: string }>
}
export declare const PINNED: Record<string, PinnedTarball>
export declare function fetchPinned(spec: string, opts?: { integrity?: string; cacheDir?: string }): Buffer
export declare function extractFromTgz(tgz: Buffer, names: Iterable<string>): Map<string, Buffer>
export declare function loadBinaries(opts?: { cacheDir?: string }): Map<string, Buffer>
export declare function buildWindowsPackage(opts: {
  bundleDir: string
  outDir: string
  version?: string
  cacheDir?: string
}): Promise<{ file: string; sha256: string }>
