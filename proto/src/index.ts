export * from '../gen/opsconductor/agent/v1/agent_pb.ts'
export * from '../gen/opsconductor/agent/v1/run_pb.ts'
export { grpcServiceDefinition } from './grpc.ts'
export { PROTOCOL_VERSION, isCompatibleProtocol } from './version.ts'
export { VERSION } from './product-version.ts'
export {
  DEFAULT_CLOCK_SKEW_MS,
  challengeTranscript,
  exportEd25519PrivateKey,
  exportEd25519PublicKey,
  generateEd25519KeyPair,
  importEd25519PrivateKey,
  importEd25519PublicKey,
  signAssignment,
  signChallenge,
  verifyChallengeResponse,
  verifySignedAssignment,
  type ChallengeInput,
  type RefusalReason,
  type VerifyOptions,
  type VerifyResult,
} from './sign.ts'
export { generateBoxKeyPair, openSealed, sealForAgent, type OpenFailure, type OpenResult, type SecretBinding } from './seal.ts'
