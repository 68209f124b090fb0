CREATE TABLE "maintenance_window" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"enabled" boolean DEFAULT true NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"kind" text NOT NULL,
	"starts_at" timestamp with time zone,
	"ends_at" timestamp with time zone,
	"cron" text,
	"duration_sec" integer,
	"ranges" jsonb,
	"applies_to" jsonb NOT NULL,
	"action" text DEFAULT 'skip' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_by" text,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
CREATE UNIQUE INDEX "maintenance_window_name_lower_idx" ON "maintenance_window" USING btree (lower("name")) WHERE "maintenance_window"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "maintenance_window_live_idx" ON "maintenance_window" USING btree ("kind") WHERE "maintenance_window"."enabled" and "maintenance_window"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "schedule_fire_waiting_idx" ON "schedule_fire" USING btree ("status","fire_at") WHERE "schedule_fire"."status" in ('queued', 'deferred');