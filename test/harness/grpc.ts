import * as grpc from '@grpc/grpc-js'
import { service as healthService } from 'grpc-health-check'

const HealthClient = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health')

type CheckFn = (
  req: { service: string },
  opts: grpc.CallOptions,
  cb: (err: grpc.ServiceError | null, res: { status: string }) => void,
) => void

/** Calls grpc.health.v1.Health/Check over TLS, trusting only `ca`. Resolves with the status name. */
export function grpcHealthCheck(address: string, ca: string, service = '', deadlineMs = 5000): Promise<string> {
  const client = new HealthClient(address, grpc.credentials.createSsl(Buffer.from(ca)))
  const check = (client as unknown as { check: CheckFn }).check.bind(client)
  return new Promise<string>((resolve, reject) => {
    check({ service }, { deadline: Date.now() + deadlineMs }, (err, res) => {
      client.close()
      if (err) reject(err)
      else resolve(res.status)
    })
  })
}
