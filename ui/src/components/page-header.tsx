import { createEffect, type JSX } from 'solid-js'

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
