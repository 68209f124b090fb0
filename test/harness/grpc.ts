import * as grpc from '@grpc/grpc-js'
import { service as healthService } from 'grpc-health-check'

const HealthClient = grpc.makeGenericClientConstructor(healthService as unknown as grpc.ServiceDefinition, 'Health')

/** Calls grpc.health.v1.Health/Check over TLS, trusting only `ca`. Resolves with the status name. */
export function grpcHealthCheck(address: string, ca: string, service = '', deadlineMs = 5000): Promise<string> {
  const client = new HealthClient(address, grpc.credentials.createSsl(Buffer.from(ca)))
  return new Promise<string>((resolve, reject) => {
    client.check({ service }, { deadline: Date.now() + deadlineMs }, (err: grpc.ServiceError | null, res: { status: string }) => {
      client.close()
      if (err) reject(err)
      else resolve(res.status)
    })
  })
}
