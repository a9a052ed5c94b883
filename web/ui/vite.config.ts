import { defineConfig } from 'vite'

// The build goes to ../dist, which is committed and embedded in the Go
// binary (package web), so that `go run ./cmd/hushflow serve` needs no Node.
export default defineConfig({
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: '../dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    chunkSizeWarningLimit: 1000,
    rollupOptions: {
      output: {
        manualChunks(id) {
          if (id.includes('node_modules/@codemirror') || id.includes('node_modules/@lezer')) return 'codemirror'
        },
      },
    },
  },
  server: {
    // `npm run dev` against a local `hushflow serve`.
    proxy: { '/api': 'http://127.0.0.1:8080', '/ui': 'http://127.0.0.1:8080' },
  },
})
