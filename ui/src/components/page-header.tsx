import { A } from '@solidjs/router'
import { createEffect, Show, type JSX } from 'solid-js'
import type { Role } from '../../../controller/src/auth/roles.ts'
import { can } from '../session.ts'

interface Props {
  title: string
  subtitle?: string
  actions?: JSX.Element
}

/** Page heading; also names the browser tab after the page. */
export function PageHeader(props: Props) {
  createEffect(() => {
    document.title = `${props.title} · OpsConductor`
  })
  return (
    <div class="page-header">
      <div>
        <h1>{props.title}</h1>
        {props.subtitle && <p class="subtitle">{props.subtitle}</p>}
      </div>
      <div class="page-actions">{props.actions}</div>
    </div>
  )
}

/** A page's "New …" button, for the roles that may create one (the API would refuse the others). */
export function NewLink(props: { href: string; role: Role; children: JSX.Element }) {
  return (
    <Show when={can(props.role)}>
      <A href={props.href} class="button primary">
        {props.children}
      </A>
    </Show>
  )
}
