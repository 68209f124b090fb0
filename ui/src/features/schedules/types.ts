import type { api, Ok } from '../../api.ts'

/* The shapes the scheduler API answers with, taken from its route types. */

type Body<F extends (...args: never[]) => unknown> = Ok<Awaited<ReturnType<F>>>

export type ScheduleList = Body<typeof api.schedules.$get>
export type ScheduleItem = ScheduleList['items'][number]
export type Schedule = Body<(typeof api.schedules)[':id']['$get']>
export type Preview = Body<typeof api.schedules.preview.$get>
export type PreviewFire = Preview['fires'][number]
export type FirePage = Body<(typeof api.schedules)[':id']['fires']['$get']>
export type Fire = FirePage['items'][number]
export type SchedulerStatus = Body<typeof api.scheduler.status.$get>
export type WindowList = Body<(typeof api)['maintenance-windows']['$get']>
export type MaintenanceWindow = Body<(typeof api)['maintenance-windows'][':id']['$get']>
export type Calendar = Body<(typeof api)['maintenance-windows']['calendar']['$get']>
export type Opening = Calendar['items'][number]
export type JobList = Body<typeof api.jobs.$get>
export type GroupList = Body<(typeof api)['target-groups']['$get']>
