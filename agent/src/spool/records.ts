// What a spool segment holds. Every payload starts with a type byte. Output and result records then carry the
// entry's position in the spool (`ord`, 6 bytes): a result moved to the head, or a gap marker written in place of
// dropped output, keeps the position of the record it replaces, and on replay the later copy of an ord wins.
import { create, fromBinary, toBinary } from '@bufbuild/protobuf'
import { OutputAckSchema, OutputChunkSchema, ResultAckSchema, type OutputChunk } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { encodeFrame, FRAME_HEADER } from './frame.ts'

export const REC = { output: 1, result: 2, outputAck: 3, resultAck: 4, checkpoint: 5 } as const
const ORD_BYTES = 6
/** Where the protobuf body starts inside a data frame. */
export const DATA_BODY_AT = FRAME_HEADER + 1 + ORD_BYTES

/** One assignment's ack state, as a checkpoint carries it. */
export interface AckState {
  id: string
  ackedSeq: bigint
  lastSeq: bigint
  resultAcked: boolean
}

type SpoolRecord =
  | { type: typeof REC.output | typeof REC.result; ord: number; body: Buffer }
  | { type: typeof REC.outputAck; id: string; ackedSeq: bigint }
  | { type: typeof REC.resultAck; id: string }
  | { type: typeof REC.checkpoint; states: AckState[] }
  | { type: 0 }

export function dataFrame(type: typeof REC.output | typeof REC.result, ord: number, body: Uint8Array): Buffer {
  const prefix = Buffer.allocUnsafe(1 + ORD_BYTES)
  prefix[0] = type
  prefix.writeUIntLE(ord, 1, ORD_BYTES)
  return encodeFrame(prefix, body)
}

export function outputAckFrame(id: string, ackedSeq: bigint): Buffer {
  return encodeFrame(Uint8Array.of(REC.outputAck), toBinary(OutputAckSchema, create(OutputAckSchema, { assignmentId: id, ackedSeq })))
}

export function resultAckFrame(id: string): Buffer {
  return encodeFrame(Uint8Array.of(REC.resultAck), toBinary(ResultAckSchema, create(ResultAckSchema, { assignmentId: id })))
}

export function checkpointFrame(states: AckState[]): Buffer {
  const rows = states.map((s) => [s.id, String(s.ackedSeq), String(s.lastSeq), s.resultAcked ? 1 : 0])
  return encodeFrame(Uint8Array.of(REC.checkpoint), Buffer.from(JSON.stringify(rows)))
}

/** Decodes one intact payload; an unknown type (a newer agent's record) comes back as type 0 and is skipped. */
export function decodeRecord(payload: Buffer): SpoolRecord {
  const type = payload[0]
  const rest = payload.subarray(1)
  switch (type) {
    case REC.output:
    case REC.result:
      return { type, ord: rest.readUIntLE(0, ORD_BYTES), body: rest.subarray(ORD_BYTES) }
    case REC.outputAck: {
      const ack = fromBinary(OutputAckSchema, rest)
      return { type, id: ack.assignmentId, ackedSeq: ack.ackedSeq }
    }
    case REC.resultAck:
      return { type, id: fromBinary(ResultAckSchema, rest).assignmentId }
    case REC.checkpoint: {
      const rows = JSON.parse(rest.toString('utf8')) as [string, string, string, number][]
      return { type, states: rows.map(([id, acked, last, res]) => ({ id, ackedSeq: BigInt(acked), lastSeq: BigInt(last), resultAcked: res === 1 })) }
    }
    default:
      return { type: 0 }
  }
}

/** The record that stands in for dropped output: same place in the stream, no data, and how much was lost. */
export function gapMarker(chunk: OutputChunk): OutputChunk {
  return create(OutputChunkSchema, {
    assignmentId: chunk.assignmentId,
    stream: chunk.stream,
    seq: chunk.seq,
    byteOffset: chunk.byteOffset,
    droppedBytes: chunk.droppedBytes + BigInt(chunk.data.length),
  })
}
