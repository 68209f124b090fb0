import type { DescMessage, DescService, MessageShape } from '@bufbuild/protobuf'
import { fromBinary, toBinary } from '@bufbuild/protobuf'
import type { MethodDefinition, ServiceDefinition } from '@grpc/grpc-js'

type AnyMethod = MethodDefinition<MessageShape<DescMessage>, MessageShape<DescMessage>>

/**
 * Turns a protobuf-es service descriptor into a @grpc/grpc-js service definition, so both
 * the controller's server and the agent's client use the generated messages directly.
 */
export function grpcServiceDefinition(service: DescService): ServiceDefinition {
  const definition: Record<string, AnyMethod> = {}
  for (const method of service.methods) {
    definition[method.localName] = {
      path: `/${service.typeName}/${method.name}`,
      originalName: method.name,
      requestStream: method.methodKind === 'client_streaming' || method.methodKind === 'bidi_streaming',
      responseStream: method.methodKind === 'server_streaming' || method.methodKind === 'bidi_streaming',
      requestSerialize: (msg) => Buffer.from(toBinary(method.input, msg)),
      requestDeserialize: (bytes) => fromBinary(method.input, bytes),
      responseSerialize: (msg) => Buffer.from(toBinary(method.output, msg)),
      responseDeserialize: (bytes) => fromBinary(method.output, bytes),
    }
  }
  return definition
}
