import { OperatingSystem, type HostFacts } from '../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'

export const OS_NAMES: Record<number, string> = {
  [OperatingSystem.LINUX]: 'linux',
  [OperatingSystem.WINDOWS]: 'windows',
  [OperatingSystem.DARWIN]: 'darwin',
  [OperatingSystem.FREEBSD]: 'freebsd',
}

/** Host facts as stored on the agent and its target (snake_case, like the API). */
export function factsFromHost(host: HostFacts): Record<string, unknown> {
  return {
    hostname: host.hostname,
    fqdn: host.fqdn || null,
    os: OS_NAMES[host.os] ?? 'unknown',
    os_version: host.osVersion || null,
    kernel_version: host.kernelVersion || null,
    arch: host.arch || null,
    ip_addresses: host.ipAddresses,
    machine_id: host.machineId || null,
    cpu_count: host.cpuCount || null,
    memory_bytes: host.memoryBytes ? Number(host.memoryBytes) : null,
  }
}
