import { can } from '../../session.ts'
import { SubNav } from '../schedules/kit.tsx'

/** Delivery history | Rules | Channels (admins) | My preferences. */
export function NotificationsNav() {
  return (
    <SubNav
      label="Notifications sections"
      items={[
        { href: '/notifications', label: 'Delivery history', current: (p) => p === '/notifications' || p === '/notifications/' },
        { href: '/notifications/rules', label: 'Rules' },
        ...(can('admin') ? [{ href: '/notifications/channels', label: 'Channels' }] : []),
        { href: '/notifications/preferences', label: 'My preferences' },
      ]}
    />
  )
}
