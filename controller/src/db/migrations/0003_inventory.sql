CREATE TABLE "credential" (
	"id" uuid PRIMARY KEY NOT NULL,
	"name" text NOT NULL,
	"type" text NOT NULL,
	"description" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"secret" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_by" text
);
--> statement-breakpoint
CREATE TABLE "target" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"address" text NOT NULL,
	"os_type" text NOT NULL,
	"description" text,
	"enabled" boolean DEFAULT true NOT NULL,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"connection" jsonb NOT NULL,
	"facts" jsonb,
	"facts_updated_at" timestamp with time zone,
	"last_seen_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "target_group" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"selector" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "target_group_member" (
	"group_id" uuid NOT NULL,
	"target_id" uuid NOT NULL,
	CONSTRAINT "target_group_member_group_id_target_id_pk" PRIMARY KEY("group_id","target_id")
);
--> statement-breakpoint
CREATE TABLE "target_host_key" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"target_id" uuid NOT NULL,
	"key_type" text NOT NULL,
	"fingerprint" text NOT NULL,
	"public_key" text NOT NULL,
	"status" text NOT NULL,
	"first_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"decided_at" timestamp with time zone,
	"decided_by" text
);
--> statement-breakpoint
ALTER TABLE "target_group_member" ADD CONSTRAINT "target_group_member_group_id_target_group_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."target_group"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "target_group_member" ADD CONSTRAINT "target_group_member_target_id_target_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."target"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "target_host_key" ADD CONSTRAINT "target_host_key_target_id_target_id_fk" FOREIGN KEY ("target_id") REFERENCES "public"."target"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "credential_name_lower_idx" ON "credential" USING btree (lower("name"));--> statement-breakpoint
CREATE UNIQUE INDEX "target_name_lower_idx" ON "target" USING btree (lower("name"));--> statement-breakpoint
CREATE INDEX "target_os_type_idx" ON "target" USING btree ("os_type");--> statement-breakpoint
CREATE INDEX "target_tags_idx" ON "target" USING gin ("tags" jsonb_path_ops);--> statement-breakpoint
CREATE INDEX "target_connection_type_idx" ON "target" USING btree (("connection"->>'type'));--> statement-breakpoint
CREATE INDEX "target_last_seen_idx" ON "target" USING btree ("last_seen_at");--> statement-breakpoint
CREATE UNIQUE INDEX "target_group_name_lower_idx" ON "target_group" USING btree (lower("name"));--> statement-breakpoint
CREATE INDEX "target_group_member_target_idx" ON "target_group_member" USING btree ("target_id");--> statement-breakpoint
CREATE UNIQUE INDEX "target_host_key_fp_idx" ON "target_host_key" USING btree ("target_id","fingerprint");