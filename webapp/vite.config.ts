import { resolve } from "node:path";
import { defineConfig } from "vitest/config";

// One multi-page build: index.html is the user app (/app), admin/index.html the admin app
// (/admin/miniapp). Both load hashed assets from /app/assets/, which FastAPI caches for a year.
export default defineConfig({
  base: "/app/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    rollupOptions: {
      input: {
        user: resolve(import.meta.dirname, "index.html"),
        admin: resolve(import.meta.dirname, "admin/index.html"),
      },
    },
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
