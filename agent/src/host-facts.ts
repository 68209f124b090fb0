import { create } from '@bufbuild/protobuf'
import { existsSync, readFileSync } from 'node:fs'
import os from 'node:os'
import { HostFactsSchema, OperatingSystem, type HostFacts } from '../../proto/gen/opsconductor/agent/v1/agent_pb.ts'

const OS: Partial<Record<NodeJS.Platform, OperatingSystem>> = {
  linux: OperatingSystem.LINUX,
  win32: OperatingSystem.WINDOWS,
  darwin: OperatingSystem.DARWIN,
  freebsd: OperatingSystem.FREEBSD,
}

function osRelease(): string {
  if (process.platform !== 'linux' || !existsSync('/etc/os-release')) return `${os.type()} ${os.release()}`
  const pretty = /^PRETTY_NAME="?([^"\n]+)"?/m.exec(readFileSync('/etc/os-release', 'utf8'))
  return pretty?.[1] ?? os.type()
}

function machineId(): string {
  for (const file of ['/etc/machine-id', '/var/lib/dbus/machine-id']) {
    if (existsSync(file)) return readFileSync(file, 'utf8').trim()
  }
  return ''
}

/** What the controller learns about the host at enrollment and in every Hello. */
export function collectHostFacts(): HostFacts {
  const addresses = Object.values(os.networkInterfaces())
    .flat()
    .filter((a): a is os.NetworkInterfaceInfo => a !== undefined && !a.internal)
    .map((a) => a.address)
  return create(HostFactsSchema, {
    hostname: os.hostname(),
    fqdn: os.hostname(),
    os: OS[process.platform] ?? OperatingSystem.UNSPECIFIED,
    osVersion: osRelease(),
    kernelVersion: os.release(),
    arch: process.arch,
    ipAddresses: addresses,
    machineId: machineId(),
    cpuCount: os.cpus().length,
    memoryBytes: BigInt(os.totalmem()),
  })
}
