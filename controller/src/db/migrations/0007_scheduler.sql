CREATE TABLE "schedule" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"job_id" uuid NOT NULL,
	"parameters" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"secret_params" jsonb,
	"targets" text,
	"cron" text NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"start_at" timestamp with time zone,
	"end_at" timestamp with time zone,
	"misfire_policy" text DEFAULT 'run_once' NOT NULL,
	"misfire_max_lateness_sec" integer DEFAULT 3600 NOT NULL,
	"concurrency_policy" text DEFAULT 'allow' NOT NULL,
	"max_concurrent_runs" integer DEFAULT 1 NOT NULL,
	"retry_count" integer DEFAULT 0 NOT NULL,
	"retry_delay_sec" integer DEFAULT 60 NOT NULL,
	"retry_backoff" real DEFAULT 2 NOT NULL,
	"next_fire_at" timestamp with time zone,
	"last_fire_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_by" text,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "schedule_fire" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"schedule_id" uuid NOT NULL,
	"fire_at" timestamp with time zone NOT NULL,
	"status" text NOT NULL,
	"reason" text,
	"run_id" uuid,
	"attempt" integer DEFAULT 1 NOT NULL,
	"decided_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_by" text,
	"lag_ms" integer,
	"detail" jsonb
);
--> statement-breakpoint
CREATE TABLE "scheduler_state" (
	"id" integer PRIMARY KEY DEFAULT 1 NOT NULL,
	"paused" boolean DEFAULT false NOT NULL,
	"paused_by" text,
	"paused_at" timestamp with time zone,
	"leader_node" text,
	"leader_since" timestamp with time zone,
	"last_tick_at" timestamp with time zone,
	"due_count" integer DEFAULT 0 NOT NULL,
	"lag_ms" integer
);
--> statement-breakpoint
ALTER TABLE "schedule" ADD CONSTRAINT "schedule_job_id_job_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."job"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedule_fire" ADD CONSTRAINT "schedule_fire_schedule_id_schedule_id_fk" FOREIGN KEY ("schedule_id") REFERENCES "public"."schedule"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "schedule_fire" ADD CONSTRAINT "schedule_fire_run_id_run_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."run"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "schedule_name_lower_idx" ON "schedule" USING btree (lower("name")) WHERE "schedule"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "schedule_job_idx" ON "schedule" USING btree ("job_id");--> statement-breakpoint
CREATE INDEX "schedule_due_idx" ON "schedule" USING btree ("next_fire_at") WHERE "schedule"."enabled" and "schedule"."deleted_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "schedule_fire_once_idx" ON "schedule_fire" USING btree ("schedule_id","fire_at");--> statement-breakpoint
CREATE INDEX "schedule_fire_recent_idx" ON "schedule_fire" USING btree ("schedule_id","decided_at");--> statement-breakpoint
ALTER TABLE "scheduler_state" ADD CONSTRAINT "scheduler_state_one_row" CHECK ("id" = 1);--> statement-breakpoint
INSERT INTO "scheduler_state" ("id") VALUES (1) ON CONFLICT DO NOTHING;
