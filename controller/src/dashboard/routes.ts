import { Hono } from 'hono'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { parseQuery } from '../http/pagination.ts'
import { activeRuns, ActiveRunsQuery, failingJobs, FailingJobsQuery, runStats, RunStatsQuery } from './service.ts'

/** What the web UI's dashboard shows about runs and jobs; mounted at /api/v1/dashboard. Read-only. */
export const dashboardRoutes = new Hono<AppEnv>()
  .get('/run-stats', allow('viewer'), async (c) => c.json(await runStats(c.var.ctx, parseQuery(RunStatsQuery, c.req.query()).hours)))
  .get('/active-runs', allow('viewer'), async (c) => c.json(await activeRuns(c.var.ctx, parseQuery(ActiveRunsQuery, c.req.query()).limit)))
  .get('/failing-jobs', allow('viewer'), async (c) => c.json(await failingJobs(c.var.ctx, parseQuery(FailingJobsQuery, c.req.query()).limit)))
