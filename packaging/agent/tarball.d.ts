// Types for tarball.js, for the TypeScript tests.
export declare function buildTarball(opts: { bundleDir: string; outDir: string }): { file: string }
