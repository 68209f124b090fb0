import type { ActiveRunsDto, FailingJobsDto, RunStatsDto } from '../../../../controller/src/dashboard/service.ts'
import { api, getJson, unwrap, type Ok } from '../../api.ts'

/*
 * The dashboard's reads. /dashboard/* answers with the controller's DTO types (imported, not
 * copied); schedules come from the schedules API.
 */

export type { ActiveRunsDto, FailingJobsDto, RunStatsDto }
export type ActiveRun = ActiveRunsDto['items'][number]
export type FailingJob = FailingJobsDto['items'][number]
export type ScheduleItem = Ok<Awaited<ReturnType<typeof api.schedules.$get>>>['items'][number]

export const getRunStats = () => getJson<RunStatsDto>('/api/v1/dashboard/run-stats')
export const getActiveRuns = () => getJson<ActiveRunsDto>('/api/v1/dashboard/active-runs?limit=8')
export const getFailingJobs = () => getJson<FailingJobsDto>('/api/v1/dashboard/failing-jobs?limit=8')

/** Enabled schedules (one page of up to 500: enough to find the next few fires of any real installation). */
export const getEnabledSchedules = () => unwrap(api.schedules.$get({ query: { enabled: 'true', limit: '500' } }), 'GET /schedules')
