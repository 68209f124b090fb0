import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'
import solid from 'vite-plugin-solid'

// Anchored to this folder so `vite build --config ui/vite.config.ts` works from the repo root.
const root = fileURLToPath(new URL('.', import.meta.url))

export default defineConfig({
  root,
  base: '/',
  plugins: [solid()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    // The controller serves a strict CSP (default-src 'self'); keep every asset a real file.
    assetsInlineLimit: 0,
  },
})
