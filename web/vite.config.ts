import { resolve } from "node:path";
import { defineConfig } from "vite";

// The pages are plain TypeScript; lib/client is bundled in from the repo.
export default defineConfig({
  root: import.meta.dirname,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input: {
        index: resolve(import.meta.dirname, "index.html"),
        host: resolve(import.meta.dirname, "host.html"),
        view: resolve(import.meta.dirname, "view.html"),
        ai: resolve(import.meta.dirname, "ai.html"),
        meet: resolve(import.meta.dirname, "meet.html"),
      },
    },
  },
});
