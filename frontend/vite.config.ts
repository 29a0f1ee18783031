import { defineConfig } from "vitest/config";

// The API runs on :8000 in development (`tessera serve`); `npm run dev` proxies to it.
export default defineConfig({
  server: {
    proxy: { "/api": "http://127.0.0.1:8000" },
  },
  build: {
    target: "es2022",
    sourcemap: true,
  },
  test: {
    include: ["src/**/*.test.ts"],
    environment: "node",
  },
});
