import { A } from '@solidjs/router'
import { Show, type JSX } from 'solid-js'
import type { Role } from '../../../controller/src/auth/roles.ts'
import { can, me } from '../session.ts'
import { PageHeader } from './page-header.tsx'

/**
 * The page for a role that may open it; a plain 403 page for everyone else (the API would refuse
 * them anyway). `page` names it in a sentence: "The Users page", "The audit log".
 */
export function RequireRole(props: { role: Role; page: string; children: JSX.Element }) {
  return (
    <Show when={can(props.role)} fallback={<Forbidden role={props.role} page={props.page} />}>
      {props.children}
    </Show>
  )
}

export function Forbidden(props: { role: Role; page: string }) {
  return (
    <section class="forbidden" aria-labelledby="forbidden-title">
      <PageHeader title="Access denied" />
      <div class="card forbidden-card">
        <p class="forbidden-code" aria-hidden="true">
          403
        </p>
        <h2 id="forbidden-title">
          {props.page} is for {props.role}s
        </h2>
        <p>
          You are signed in as <strong>{me()?.username}</strong> with the <strong>{me()?.role}</strong> role. Ask an administrator if you need access.
        </p>
        <A href="/" class="button">
          Back to the dashboard
        </A>
      </div>
    </section>
  )
}
