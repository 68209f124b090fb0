import { SubNav } from '../../components/sub-nav.tsx'
import { can } from '../../session.ts'

/** The targets area's sections: the fleet, its groups, bulk import (operators). */
export function TargetsNav() {
  return (
    <SubNav
      label="Targets sections"
      items={[
        { href: '/targets', label: 'All targets', end: true },
        { href: '/targets/groups', label: 'Groups' },
        ...(can('operator') ? [{ href: '/targets/import', label: 'Import' }] : []),
      ]}
    />
  )
}
