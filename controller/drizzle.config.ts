import { defineConfig } from 'drizzle-kit'

export default defineConfig({
  dialect: 'postgresql',
  schema: './controller/src/**/*.sql.ts',
  out: './controller/src/db/migrations',
})
