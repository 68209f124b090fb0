// Types for bundle.js (plain ESM, run by node without tsx), for the TypeScript tests.
export declare const ROOT: string
export declare const MANIFEST: string
export declare class BundleError extends Error {}
export declare function productVersion(): string
export declare function buildAgentBundle(opts: { platform: 'linux' | 'win32'; arch: 'x64' | 'arm64'; outDir: string }): Promise<{ dir: string; version: string; files: string[] }>
export declare function listFiles(dir: string): string[]
export declare function sha256(file: string): string
