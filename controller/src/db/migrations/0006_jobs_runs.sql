CREATE TABLE "job" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"current_version" integer NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"tags" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_by" text,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "job_version" (
	"job_id" uuid NOT NULL,
	"version" integer NOT NULL,
	"definition" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	CONSTRAINT "job_version_job_id_version_pk" PRIMARY KEY("job_id","version")
);
--> statement-breakpoint
CREATE TABLE "run" (
	"id" uuid PRIMARY KEY NOT NULL,
	"job_id" uuid NOT NULL,
	"job_version" integer NOT NULL,
	"job_name" text NOT NULL,
	"status" text NOT NULL,
	"parameters" jsonb NOT NULL,
	"secret_params" jsonb,
	"selector" text,
	"trigger" text NOT NULL,
	"retry_of" uuid,
	"requested_by" text,
	"requested_by_name" text,
	"created_at" timestamp with time zone NOT NULL,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"deadline" timestamp with time zone,
	"cancel_requested_at" timestamp with time zone,
	"cancel_requested_by" text,
	"error" text,
	"target_count" integer DEFAULT 0 NOT NULL,
	"output_pruned_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "run_event" (
	"run_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"kind" text NOT NULL,
	"step_run_id" uuid,
	"status" text,
	"output_seq" bigint,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "run_event_run_id_seq_pk" PRIMARY KEY("run_id","seq")
);
--> statement-breakpoint
CREATE TABLE "run_event_counter" (
	"run_id" uuid PRIMARY KEY NOT NULL,
	"seq" bigint DEFAULT 0 NOT NULL
);
--> statement-breakpoint
CREATE TABLE "run_target" (
	"run_id" uuid NOT NULL,
	"target_id" uuid NOT NULL,
	"position" integer NOT NULL,
	"name" text NOT NULL,
	"snapshot" jsonb NOT NULL,
	"transport" text NOT NULL,
	"agent_id" uuid,
	CONSTRAINT "run_target_run_id_target_id_pk" PRIMARY KEY("run_id","target_id")
);
--> statement-breakpoint
CREATE TABLE "step_output" (
	"step_run_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"stream" smallint NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "step_output_step_run_id_seq_pk" PRIMARY KEY("step_run_id","seq")
);
--> statement-breakpoint
CREATE TABLE "step_run" (
	"id" uuid PRIMARY KEY NOT NULL,
	"run_id" uuid NOT NULL,
	"step_index" integer NOT NULL,
	"step_id" text NOT NULL,
	"step_type" text NOT NULL,
	"target_id" uuid,
	"target_name" text,
	"attempt" integer DEFAULT 1 NOT NULL,
	"status" text NOT NULL,
	"ready" boolean DEFAULT false NOT NULL,
	"available_at" timestamp with time zone NOT NULL,
	"transport" text NOT NULL,
	"agent_id" uuid,
	"claimed_by" uuid,
	"lease_until" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"exit_code" integer,
	"signal" text,
	"error" text,
	"result" jsonb,
	"rendered" jsonb,
	"remote" jsonb,
	"output_bytes" bigint DEFAULT 0 NOT NULL,
	"truncated" boolean DEFAULT false NOT NULL
);
--> statement-breakpoint
ALTER TABLE "job_version" ADD CONSTRAINT "job_version_job_id_job_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."job"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run" ADD CONSTRAINT "run_job_id_job_id_fk" FOREIGN KEY ("job_id") REFERENCES "public"."job"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_event" ADD CONSTRAINT "run_event_run_id_run_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."run"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_event_counter" ADD CONSTRAINT "run_event_counter_run_id_run_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."run"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "run_target" ADD CONSTRAINT "run_target_run_id_run_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."run"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "step_output" ADD CONSTRAINT "step_output_step_run_id_step_run_id_fk" FOREIGN KEY ("step_run_id") REFERENCES "public"."step_run"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "step_run" ADD CONSTRAINT "step_run_run_id_run_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."run"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "job_name_lower_idx" ON "job" USING btree (lower("name")) WHERE "job"."deleted_at" is null;--> statement-breakpoint
CREATE INDEX "job_version_created_idx" ON "job_version" USING btree ("job_id","created_at");--> statement-breakpoint
CREATE INDEX "run_created_idx" ON "run" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "run_job_idx" ON "run" USING btree ("job_id","created_at");--> statement-breakpoint
CREATE INDEX "run_status_idx" ON "run" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "run_finished_idx" ON "run" USING btree ("finished_at");--> statement-breakpoint
CREATE INDEX "run_active_idx" ON "run" USING btree ("id") WHERE "run"."status" in ('queued', 'running');--> statement-breakpoint
CREATE INDEX "run_target_target_idx" ON "run_target" USING btree ("target_id");--> statement-breakpoint
CREATE INDEX "step_run_run_idx" ON "step_run" USING btree ("run_id","step_index","target_id","attempt");--> statement-breakpoint
CREATE INDEX "step_run_claimable_idx" ON "step_run" USING btree ("available_at") WHERE "step_run"."status" = 'queued' and "step_run"."ready";--> statement-breakpoint
CREATE INDEX "step_run_leased_idx" ON "step_run" USING btree ("lease_until") WHERE "step_run"."status" = 'running';--> statement-breakpoint
CREATE INDEX "step_run_target_idx" ON "step_run" USING btree ("target_id");--> statement-breakpoint
-- Run events (status changes and output pointers) are recorded by triggers, so every code path
-- that changes a run or stores output is seen by live viewers on every controller (NOTIFY).
CREATE FUNCTION opsc_append_run_events(ev jsonb) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
  r record;
BEGIN
  IF ev IS NULL OR jsonb_array_length(ev) = 0 THEN
    RETURN;
  END IF;
  -- Counters are locked in run id order, so concurrent writers never deadlock on them.
  PERFORM 1 FROM run_event_counter c
    WHERE c.run_id IN (SELECT DISTINCT (x->>'run_id')::uuid FROM jsonb_array_elements(ev) x)
    ORDER BY c.run_id FOR UPDATE;
  WITH e AS (
    SELECT (x->>'run_id')::uuid AS run_id, x->>'kind' AS kind, (x->>'step_run_id')::uuid AS step_run_id,
           x->>'status' AS status, (x->>'output_seq')::bigint AS output_seq, ord
    FROM jsonb_array_elements(ev) WITH ORDINALITY AS t(x, ord)
  ), numbered AS (
    SELECT e.*, row_number() OVER (PARTITION BY e.run_id ORDER BY e.ord) AS n, count(*) OVER (PARTITION BY e.run_id) AS total FROM e
  ), bumped AS (
    UPDATE run_event_counter c SET seq = c.seq + t.total
    FROM (SELECT DISTINCT run_id, total FROM numbered) t
    WHERE c.run_id = t.run_id
    RETURNING c.run_id, c.seq - t.total AS base
  )
  INSERT INTO run_event (run_id, seq, kind, step_run_id, status, output_seq)
  SELECT nb.run_id, b.base + nb.n, nb.kind, nb.step_run_id, nb.status, nb.output_seq
  FROM numbered nb JOIN bumped b ON b.run_id = nb.run_id;
  FOR r IN SELECT DISTINCT x->>'run_id' AS id FROM jsonb_array_elements(ev) x LOOP
    PERFORM pg_notify('opsc_run_event', r.id);
  END LOOP;
END $$;
--> statement-breakpoint
CREATE FUNCTION opsc_run_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO run_event_counter (run_id, seq) VALUES (NEW.id, 0);
  PERFORM opsc_append_run_events(jsonb_build_array(jsonb_build_object('run_id', NEW.id, 'kind', 'run', 'status', NEW.status)));
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER run_inserted AFTER INSERT ON run FOR EACH ROW EXECUTE FUNCTION opsc_run_inserted();
--> statement-breakpoint
CREATE FUNCTION opsc_run_status_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.status IS DISTINCT FROM OLD.status THEN
    PERFORM opsc_append_run_events(jsonb_build_array(jsonb_build_object('run_id', NEW.id, 'kind', 'run', 'status', NEW.status)));
  END IF;
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER run_status_changed AFTER UPDATE ON run FOR EACH ROW EXECUTE FUNCTION opsc_run_status_changed();
--> statement-breakpoint
CREATE FUNCTION opsc_step_run_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM opsc_append_run_events((
    SELECT jsonb_agg(jsonb_build_object('run_id', n.run_id, 'kind', 'step', 'step_run_id', n.id, 'status', n.status) ORDER BY n.run_id, n.step_index, n.id)
    FROM new_rows n));
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER step_run_inserted AFTER INSERT ON step_run REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsc_step_run_inserted();
--> statement-breakpoint
CREATE FUNCTION opsc_step_run_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM opsc_append_run_events((
    SELECT jsonb_agg(jsonb_build_object('run_id', n.run_id, 'kind', 'step', 'step_run_id', n.id, 'status', n.status) ORDER BY n.run_id, n.step_index, n.id)
    FROM new_rows n JOIN old_rows o ON o.id = n.id
    WHERE n.status IS DISTINCT FROM o.status));
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER step_run_updated AFTER UPDATE ON step_run REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsc_step_run_updated();
--> statement-breakpoint
CREATE FUNCTION opsc_step_output_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM opsc_append_run_events((
    SELECT jsonb_agg(jsonb_build_object('run_id', s.run_id, 'kind', 'output', 'step_run_id', s.id, 'output_seq', n.seq) ORDER BY s.run_id, n.step_run_id, n.seq)
    FROM new_rows n JOIN step_run s ON s.id = n.step_run_id));
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER step_output_inserted AFTER INSERT ON step_output REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsc_step_output_inserted();
--> statement-breakpoint
CREATE FUNCTION opsc_agent_output_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM opsc_append_run_events((
    SELECT jsonb_agg(jsonb_build_object('run_id', s.run_id, 'kind', 'output', 'step_run_id', s.id, 'output_seq', n.seq) ORDER BY s.run_id, n.assignment_id, n.seq)
    FROM new_rows n JOIN step_run s ON s.id = n.assignment_id));
  RETURN NULL;
END $$;
--> statement-breakpoint
CREATE TRIGGER agent_output_inserted AFTER INSERT ON agent_output REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION opsc_agent_output_inserted();
