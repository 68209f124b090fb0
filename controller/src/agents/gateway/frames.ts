import { create, type MessageInitShape } from '@bufbuild/protobuf'
import { ConnectResponseSchema, type ConnectResponse } from '../../../../proto/gen/opsconductor/agent/v1/agent_pb.ts'

type FrameInit = NonNullable<MessageInitShape<typeof ConnectResponseSchema>['frame']>

/** One controller → agent frame, e.g. `frame({ case: 'heartbeat', value: { sentAtUnixMs } })`. */
export function frame(init: FrameInit): ConnectResponse {
  return create(ConnectResponseSchema, { frame: init })
}
