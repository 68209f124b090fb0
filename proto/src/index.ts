export * from '../gen/opsconductor/agent/v1/agent_pb.ts'
export { grpcServiceDefinition } from './grpc.ts'
export { PROTOCOL_VERSION, isCompatibleProtocol } from './version.ts'
export { VERSION } from './product-version.ts'
