import type { AppContext } from '../context.ts'
import { getJobRow, getJobVersion } from '../jobs/service.ts'
import { renderDeep, TemplateRenderError } from '../jobs/template.ts'
import { addSecret, maskValue } from './execute.ts'
import { resolveRun, stepTransport, targetSnapshot, type RunRequest } from './launch.ts'
import { SecretMasker } from '../../../proto/src/masking.ts'

const SHOWN_TARGETS = 50

/**
 * A dry run: the targets each step would reach, its inputs rendered for the first targets, and
 * the transport per target — nothing is executed and nothing is stored. Secret parameters are
 * masked; credential references and earlier steps' outputs are shown as the templates that will
 * fill them at run time.
 */
export async function planJob(ctx: AppContext, jobId: string, request: RunRequest) {
  const row = await getJobRow(ctx.db, jobId)
  const definition = (await getJobVersion(ctx.db, jobId, row.currentVersion)).definition
  const resolved = await resolveRun(ctx, definition, request)
  const masker = new SecretMasker()
  for (const p of definition.parameters) if (p.type === 'secret') addSecret(masker, resolved.parameters[p.name])
  const byId = new Map(resolved.targets.map((t) => [t.id, t]))
  const steps = resolved.steps.map(({ step, index, targets }) => ({
    index,
    id: step.id,
    name: step.name,
    type: step.type,
    target_count: targets.filter((t) => t !== null).length,
    targets: targets.slice(0, SHOWN_TARGETS).map((id) => {
      const t = id ? byId.get(id) : undefined
      let rendered: unknown
      let note: string | undefined
      try {
        rendered = renderDeep(step.with, {
          params: resolved.parameters,
          target: t ? targetSnapshot(t) : null,
          steps: {},
          secrets: {},
        })
      } catch (err) {
        if (!(err instanceof TemplateRenderError)) throw err
        rendered = step.with
        note = `rendered at run time: ${err.message}`
      }
      return {
        target_id: id,
        target_name: t?.name ?? null,
        transport: stepTransport(step, t).transport,
        input: maskValue(rendered, masker),
        ...(note ? { note } : {}),
      }
    }),
  }))
  const shownParams = { ...resolved.parameters }
  for (const p of definition.parameters) if (p.type === 'secret' && shownParams[p.name] !== undefined) shownParams[p.name] = '****'
  return {
    job_id: jobId,
    job_version: row.currentVersion,
    parameters: shownParams,
    selector: resolved.selector,
    target_count: resolved.targets.length,
    targets: resolved.targets.slice(0, 500).map((t) => ({ id: t.id, name: t.name, address: t.address, os_type: t.osType, connection: t.connection.type })),
    steps,
  }
}
