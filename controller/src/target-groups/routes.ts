import { Hono } from 'hono'
import { z } from 'zod'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { changeStaticMembers, createGroup, getGroup, GroupInput, groupMembers, GroupPatch, listGroups, removeGroup, updateGroup } from './service.ts'

const MemberChange = z.object({ target_ids: z.array(z.uuid()).min(1).max(10_000) }).strict()

export const targetGroupsRoutes = new Hono<AppEnv>()
  .get('/', allow('viewer'), async (c) => c.json(await listGroups(c.var.ctx, parseQuery(PageQuery, c.req.query()))))
  .post('/', allow('operator'), async (c) => {
    const group = await createGroup(c.var.ctx, await readJson(c, GroupInput))
    c.set('audit', { resourceType: 'target_group', resourceId: group.id, summary: { name: group.name, selector: group.selector, static_members: group.static_members } })
    return c.json(group, 201)
  })
  .get('/:id', allow('viewer'), async (c) => c.json(await getGroup(c.var.ctx, c.req.param('id'))))
  .put('/:id', allow('operator'), async (c) => {
    const patch = await readJson(c, GroupPatch)
    const group = await updateGroup(c.var.ctx, c.req.param('id'), patch)
    c.set('audit', { resourceType: 'target_group', summary: { name: group.name, fields: Object.keys(patch) } })
    return c.json(group)
  })
  .delete('/:id', allow('operator'), async (c) => {
    const group = await removeGroup(c.var.ctx, c.req.param('id'))
    c.set('audit', { resourceType: 'target_group', summary: { name: group.name } })
    return c.json(group)
  })
  .get('/:id/members', allow('viewer'), async (c) => c.json(await groupMembers(c.var.ctx, c.req.param('id'), parseQuery(PageQuery, c.req.query()))))
  .post('/:id/members', allow('operator'), async (c) => {
    const { target_ids } = await readJson(c, MemberChange)
    const group = await changeStaticMembers(c.var.ctx, c.req.param('id'), target_ids, 'add')
    c.set('audit', { action: 'target_groups.add_members', resourceType: 'target_group', summary: { name: group.name, added: target_ids.length } })
    return c.json(group)
  })
  .post('/:id/members/remove', allow('operator'), async (c) => {
    const { target_ids } = await readJson(c, MemberChange)
    const group = await changeStaticMembers(c.var.ctx, c.req.param('id'), target_ids, 'remove')
    c.set('audit', { action: 'target_groups.remove_members', resourceType: 'target_group', summary: { name: group.name, removed: target_ids.length } })
    return c.json(group)
  })
