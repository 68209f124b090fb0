// Types for deb.js, for the TypeScript tests.
export declare const PACKAGE: string
export declare function buildDeb(opts: { bundleDir: string; outDir: string }): { file: string; version: string }
