/**
 * Every Postgres advisory lock key the controller takes, in one place so two features cannot pick
 * the same one by accident (the first-admin and signing-key locks once shared the audit and
 * migration keys). Values are arbitrary but fixed: controllers of different versions take them
 * together during a rolling upgrade, so a key that is in use never changes.
 *
 * Single keys are bigints; the two-int form (class, id) is a separate key space in Postgres.
 */
export const LOCK = {
  /** Session lock held for the whole migration: one controller migrates at a time. */
  migration: 0x6f707363,
  /** "read the last hash, take the next id, insert" on the audit chain. */
  audit: 0x6f707361,
  /** Creating the first admin when several controllers start on an empty database. */
  firstAdmin: 0x6f706164,
  /** Creating the assignment-signing key. */
  signingKey: 0x6f70736e,
  /** Rewrapping secrets under a new master key. */
  keyFile: 0x6f70736b,
  /** Writing the job dependency graph. */
  dependencyGraph: 0x6f707364,
} as const

/** Classes of two-int locks: (class, id). */
export const LOCK_CLASS = {
  /** (leader, 1): the scheduler's leader. */
  leader: 0x6f707363,
  /** (job, hashtext(job id)): concurrency admission of one job's runs. */
  job: 0x6f706a62,
  /** (channel, hashtext(channel id)): a notification channel's rate check. */
  notifyChannel: 0x6e746679,
  /** (target name, hashtext(lower(name))): allocating a target name at enrollment. */
  targetName: 0x6f70746e,
} as const
