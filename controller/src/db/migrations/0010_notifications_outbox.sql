CREATE TABLE "notification" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"channel_id" uuid NOT NULL,
	"event" text NOT NULL,
	"dedupe_key" text,
	"recipient" text,
	"subject" text NOT NULL,
	"payload" jsonb NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 8 NOT NULL,
	"next_attempt_at" timestamp with time zone DEFAULT now() NOT NULL,
	"claimed_by" uuid,
	"lease_until" timestamp with time zone,
	"last_error" text,
	"run_id" uuid,
	"rule_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"delivered_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "notification_attempt" (
	"notification_id" uuid NOT NULL,
	"attempt" integer NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"outcome" text NOT NULL,
	"http_status" integer,
	"response" text,
	"error" text,
	"duration_ms" integer,
	CONSTRAINT "notification_attempt_notification_id_attempt_pk" PRIMARY KEY("notification_id","attempt")
);
--> statement-breakpoint
CREATE TABLE "notification_channel" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"type" text NOT NULL,
	"config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"secret" jsonb,
	"rate_limit_per_minute" integer DEFAULT 60 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"created_by" text,
	"updated_by" text,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
ALTER TABLE "notification" ADD CONSTRAINT "notification_channel_id_notification_channel_id_fk" FOREIGN KEY ("channel_id") REFERENCES "public"."notification_channel"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "notification_attempt" ADD CONSTRAINT "notification_attempt_notification_id_notification_id_fk" FOREIGN KEY ("notification_id") REFERENCES "public"."notification"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "notification_dedupe_idx" ON "notification" USING btree ("dedupe_key");--> statement-breakpoint
CREATE INDEX "notification_due_idx" ON "notification" USING btree ("next_attempt_at") WHERE "notification"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "notification_created_idx" ON "notification" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "notification_channel_idx" ON "notification" USING btree ("channel_id","created_at");--> statement-breakpoint
CREATE INDEX "notification_dead_idx" ON "notification" USING btree ("created_at") WHERE "notification"."status" = 'dead';--> statement-breakpoint
CREATE UNIQUE INDEX "notification_channel_name_idx" ON "notification_channel" USING btree (lower("name")) WHERE "notification_channel"."deleted_at" is null;