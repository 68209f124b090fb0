CREATE TABLE "agent_assignment" (
	"id" uuid PRIMARY KEY NOT NULL,
	"agent_id" uuid NOT NULL,
	"run_id" uuid,
	"step_id" uuid,
	"action_kind" text NOT NULL,
	"status" text NOT NULL,
	"signed" "bytea" NOT NULL,
	"signature" "bytea" NOT NULL,
	"key_id" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"sent_at" timestamp with time zone,
	"started_at" timestamp with time zone,
	"finished_at" timestamp with time zone,
	"exit_code" integer,
	"signal" text,
	"error" text,
	"reject_reason" text,
	"acked_seq" bigint DEFAULT 0 NOT NULL,
	"last_seq" bigint,
	"output_bytes" bigint DEFAULT 0 NOT NULL,
	"dropped_bytes" bigint DEFAULT 0 NOT NULL,
	"truncated" boolean DEFAULT false NOT NULL,
	"file_sha256" text,
	"file_size" bigint
);
--> statement-breakpoint
CREATE TABLE "agent_output" (
	"assignment_id" uuid NOT NULL,
	"seq" bigint NOT NULL,
	"stream" smallint NOT NULL,
	"byte_offset" bigint NOT NULL,
	"data" "bytea" NOT NULL,
	"dropped_bytes" bigint DEFAULT 0 NOT NULL,
	CONSTRAINT "agent_output_assignment_id_seq_pk" PRIMARY KEY("assignment_id","seq")
);
--> statement-breakpoint
CREATE TABLE "agent_session" (
	"agent_id" uuid PRIMARY KEY NOT NULL,
	"session_id" uuid NOT NULL,
	"controller_id" uuid NOT NULL,
	"peer_address" text,
	"connected_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "agent_assignment" ADD CONSTRAINT "agent_assignment_agent_id_agent_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agent"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_output" ADD CONSTRAINT "agent_output_assignment_id_agent_assignment_id_fk" FOREIGN KEY ("assignment_id") REFERENCES "public"."agent_assignment"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "agent_session" ADD CONSTRAINT "agent_session_agent_id_agent_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agent"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "agent_assignment_agent_idx" ON "agent_assignment" USING btree ("agent_id","created_at");--> statement-breakpoint
CREATE INDEX "agent_assignment_run_idx" ON "agent_assignment" USING btree ("run_id");--> statement-breakpoint
CREATE INDEX "agent_assignment_open_idx" ON "agent_assignment" USING btree ("status") WHERE "agent_assignment"."status" in ('pending', 'sent', 'running');