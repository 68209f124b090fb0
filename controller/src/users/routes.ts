import { Hono } from 'hono'
import { allow } from '../auth/access.ts'
import type { AppEnv } from '../context.ts'
import { AppError } from '../errors.ts'
import { PageQuery, parseQuery } from '../http/pagination.ts'
import { readJson } from '../http/validate.ts'
import { CreateUserInput, getUserRow, insertUser, listUsers, ListUsersQuery, removeUser, updateUser, UpdateUserInput, userDto } from './service.ts'

/** User administration (admins only); everyone manages their own profile through /auth/me. */
export const usersRoutes = new Hono<AppEnv>()
  .get('/', allow('admin'), async (c) => {
    const query = parseQuery(PageQuery.extend(ListUsersQuery.shape), c.req.query())
    return c.json(await listUsers(c.var.ctx.db, query, query))
  })
  .post('/', allow('admin'), async (c) => {
    const input = await readJson(c, CreateUserInput)
    const { user, generatedPassword } = await insertUser(c.var.ctx.db, input, c.var.ctx.clock())
    c.set('audit', { resourceType: 'user', resourceId: user.id, summary: { username: user.username, role: user.role, generated_password: generatedPassword !== undefined } })
    return c.json({ ...user, ...(generatedPassword ? { initial_password: generatedPassword } : {}) }, 201)
  })
  .get('/:id', allow('admin'), async (c) => c.json(userDto(await getUserRow(c.var.ctx.db, c.req.param('id')))))
  .put('/:id', allow('admin'), async (c) => {
    const input = await readJson(c, UpdateUserInput)
    const id = c.req.param('id')
    const before = userDto(await getUserRow(c.var.ctx.db, id))
    const after = await updateUser(c.var.ctx, c.get('principal')!, id, input)
    const roleChanged = before.role !== after.role
    c.set('audit', {
      action: roleChanged ? 'users.role_change' : 'users.update',
      resourceType: 'user',
      resourceId: id,
      summary: {
        username: after.username,
        fields: Object.keys(input).filter((k) => k !== 'password'),
        ...(roleChanged ? { role: { from: before.role, to: after.role } } : {}),
        ...(input.password !== undefined ? { password_reset: true } : {}),
      },
    })
    return c.json(after)
  })
  .delete('/:id', allow('admin'), async (c) => {
    const id = c.req.param('id')
    if (id === c.get('principal')?.userId) throw new AppError('CONFLICT', 'you cannot delete your own account')
    const removed = await removeUser(c.var.ctx, id)
    c.set('audit', { resourceType: 'user', resourceId: id, summary: { username: removed.username, role: removed.role } })
    return c.json(removed)
  })
