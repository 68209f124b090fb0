import { SubNav } from '../../components/sub-nav.tsx'

/** Schedules | Maintenance windows. */
export function SchedulesNav() {
  return (
    <SubNav
      label="Schedules sections"
      items={[
        { href: '/schedules', label: 'Schedules', current: (p) => p.startsWith('/schedules') && !p.startsWith('/schedules/maintenance') },
        { href: '/schedules/maintenance', label: 'Maintenance windows' },
      ]}
    />
  )
}
