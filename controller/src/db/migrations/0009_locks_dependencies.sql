CREATE TABLE "dependency_fire" (
	"upstream_run_id" uuid NOT NULL,
	"job_id" uuid NOT NULL,
	"status" text NOT NULL,
	"run_id" uuid,
	"error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "dependency_fire_upstream_run_id_job_id_pk" PRIMARY KEY("upstream_run_id","job_id")
);
--> statement-breakpoint
CREATE TABLE "job_dependency" (
	"job_id" uuid NOT NULL,
	"upstream_job_id" uuid NOT NULL,
	"trigger" jsonb NOT NULL,
	CONSTRAINT "job_dependency_job_id_upstream_job_id_pk" PRIMARY KEY("job_id","upstream_job_id")
);
--> statement-breakpoint
CREATE TABLE "target_lock" (
	"target_id" uuid PRIMARY KEY NOT NULL,
	"holder_run" uuid,
	"held_since" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "target_lock_wait" (
	"target_id" uuid NOT NULL,
	"run_id" uuid NOT NULL,
	"seq" bigint GENERATED ALWAYS AS IDENTITY (sequence name "target_lock_wait_seq_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"since" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "target_lock_wait_target_id_run_id_pk" PRIMARY KEY("target_id","run_id")
);
--> statement-breakpoint
ALTER TABLE "run" ADD COLUMN "triggered_by_run" uuid;--> statement-breakpoint
ALTER TABLE "run" ADD COLUMN "admitted" boolean DEFAULT true NOT NULL;--> statement-breakpoint
ALTER TABLE "run" ADD COLUMN "waiting_for" text;--> statement-breakpoint
ALTER TABLE "dependency_fire" ADD CONSTRAINT "dependency_fire_upstream_run_id_run_id_fk" FOREIGN KEY ("upstream_run_id") REFERENCES "public"."run"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "dependency_fire" ADD CONSTRAINT "dependency_fire_job_id_job_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."job"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_dependency" ADD CONSTRAINT "job_dependency_job_id_job_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."job"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "job_dependency" ADD CONSTRAINT "job_dependency_upstream_job_id_job_id_fk" FOREIGN KEY ("upstream_job_id") REFERENCES "public"."job"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "dependency_fire_run_idx" ON "dependency_fire" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "job_dependency_upstream_idx" ON "job_dependency" USING btree ("upstream_job_id");--> statement-breakpoint
CREATE INDEX "target_lock_holder_idx" ON "target_lock" USING btree ("holder_run");--> statement-breakpoint
CREATE INDEX "target_lock_wait_order_idx" ON "target_lock_wait" USING btree ("target_id","seq");--> statement-breakpoint
CREATE INDEX "target_lock_wait_run_idx" ON "target_lock_wait" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "run_job_active_idx" ON "run" USING btree ("job_id","created_at","id") WHERE "run"."status" in ('queued', 'running');