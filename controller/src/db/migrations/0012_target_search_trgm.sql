-- Substring search over target names and addresses (`?q=`) as an index scan. pg_trgm is a trusted
-- extension (Postgres 13+): a database owner may create it without superuser rights.
CREATE EXTENSION IF NOT EXISTS pg_trgm;--> statement-breakpoint
CREATE INDEX "target_name_trgm_idx" ON "target" USING gin ("name" gin_trgm_ops);--> statement-breakpoint
CREATE INDEX "target_address_trgm_idx" ON "target" USING gin ("address" gin_trgm_ops);