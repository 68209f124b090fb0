CREATE TABLE "agent_presence" (
	"agent_id" uuid PRIMARY KEY NOT NULL,
	"state" text NOT NULL,
	"changed_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
ALTER TABLE "notification" ADD COLUMN "user_id" uuid;--> statement-breakpoint
ALTER TABLE "notification" ADD COLUMN "digest_id" uuid;--> statement-breakpoint
ALTER TABLE "notification_rule" ADD COLUMN "critical" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "agent_presence" ADD CONSTRAINT "agent_presence_agent_id_agent_id_fk" FOREIGN KEY ("agent_id") REFERENCES "public"."agent"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "notification_held_idx" ON "notification" USING btree ("user_id","channel_id","created_at") WHERE "notification"."status" = 'held';