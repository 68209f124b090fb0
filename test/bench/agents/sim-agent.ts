// A simulated agent: the real ControllerConnection (own TLS connection, own Ed25519 identity, challenge
// signed over that connection's TLS exporter, heartbeats) with a runner that verifies each signed
// assignment for real but spawns nothing: `echo` answers from memory, STREAM_COMMAND streams bytes.
import { randomBytes, type KeyObject } from 'node:crypto'
import type { Logger } from 'pino'
import { OutputStream, RejectReason, type SignedAssignment } from '../../../proto/gen/opsconductor/agent/v1/run_pb.ts'
import { importEd25519PrivateKey, importEd25519PublicKey, verifySignedAssignment, type RefusalReason } from '../../../proto/src/sign.ts'
import { ControllerConnection } from '../../../agent/src/connection.ts'
import { CHUNK_BYTES, STREAM_COMMAND, type AgentIdentity } from './protocol.ts'

const CHUNK = randomBytes(CHUNK_BYTES) // incompressible, so Postgres cannot shrink what it stores

const REJECT: Record<RefusalReason, RejectReason> = {
  bad_signature: RejectReason.BAD_SIGNATURE,
  unknown_key: RejectReason.UNKNOWN_KEY,
  wrong_agent: RejectReason.WRONG_AGENT,
  expired: RejectReason.EXPIRED,
  not_yet_valid: RejectReason.NOT_YET_VALID,
  replayed: RejectReason.REPLAYED,
  malformed: RejectReason.MALFORMED,
}

/** Output sent with at most `window` chunks unacked, as an agent's spool would hold them. */
class Streamer {
  private sent = 0
  private acked = 0
  private readonly total: number

  constructor(
    private readonly conn: ControllerConnection,
    private readonly assignmentId: string,
    private readonly bytes: number,
    private readonly window: number,
  ) {
    this.total = Math.ceil(bytes / CHUNK_BYTES)
  }

  onAck(ackedSeq: number): void {
    this.acked = Math.max(this.acked, ackedSeq)
    this.pump()
  }

  pump(): void {
    while (this.sent < this.total && this.sent - this.acked < this.window) {
      const offset = this.sent * CHUNK_BYTES
      const data = CHUNK.subarray(0, Math.min(CHUNK_BYTES, this.bytes - offset))
      this.conn.send({ case: 'output', value: { assignmentId: this.assignmentId, stream: OutputStream.STDOUT, seq: BigInt(++this.sent), byteOffset: BigInt(offset), data } })
      if (this.sent === this.total) sendResult(this.conn, this.assignmentId, this.total)
    }
  }
}

function sendResult(conn: ControllerConnection, assignmentId: string, lastSeq: number, error = ''): void {
  const now = BigInt(Date.now())
  conn.send({ case: 'result', value: { assignmentId, exitCode: error ? undefined : 0, error, startedAtUnixMs: now, finishedAtUnixMs: now, lastSeq: BigInt(lastSeq) } })
}

export class SimulatedAgent {
  private readonly connection: ControllerConnection
  private readonly signingKeys = new Map<string, KeyObject>()
  private readonly streams = new Map<string, Streamer>()
  private firstReady!: () => void
  private readonly ready = new Promise<void>((resolve) => (this.firstReady = resolve))

  constructor(
    private readonly identity: AgentIdentity,
    address: string,
    caPem: string,
    log: Logger,
  ) {
    this.connection = new ControllerConnection({
      agentId: identity.id,
      controllers: [address],
      caCertPem: caPem,
      identityKey: importEd25519PrivateKey(Buffer.from(identity.seed, 'base64')),
      log,
      handlers: {
        inFlight: () => [...this.streams.keys()],
        running: () => [...this.streams.keys()],
        signingKeyIds: () => [...this.signingKeys.keys()],
        onReady: () => this.firstReady(),
        onSigningKeys: (keys) => {
          this.signingKeys.clear()
          for (const k of keys) this.signingKeys.set(k.keyId, importEd25519PublicKey(k.publicKey))
        },
        onAssignment: (signed) => this.onAssignment(signed),
        onOutputAck: (ack) => this.streams.get(ack.assignmentId)?.onAck(Number(ack.ackedSeq)),
        onResultAck: (id) => this.streams.delete(id),
        onCancel: () => {},
        onFileChunk: () => {},
        onDisconnected: () => {},
      },
    })
  }

  /** Starts the connection loop; resolves at the first SessionReady (reconnects are the connection's own business). */
  start(): Promise<void> {
    void this.connection.run()
    return this.ready
  }

  stop(): void {
    this.connection.stop()
  }

  private onAssignment(signed: SignedAssignment): void {
    const conn = this.connection
    const verdict = verifySignedAssignment(signed, { publicKeys: this.signingKeys, agentId: this.identity.id, now: Date.now() })
    if (!verdict.ok) {
      conn.send({ case: 'rejected', value: { assignmentId: verdict.assignmentId ?? '', reason: REJECT[verdict.reason], message: `refused: ${verdict.reason}` } })
      return
    }
    const { assignmentId, action } = verdict.assignment
    conn.send({ case: 'accepted', value: { assignmentId, acceptedAtUnixMs: BigInt(Date.now()) } })
    const command = action.case === 'exec' ? action.value.command : undefined
    // A job's exec step arrives as a shell script: `echo …` is answered the same way.
    const argv = command?.case === 'argv' ? command.value.argv : command?.case === 'script' && command.value.script.startsWith('echo ') ? ['echo', command.value.script.slice(5)] : []
    if (argv[0] === 'echo') {
      conn.send({ case: 'output', value: { assignmentId, stream: OutputStream.STDOUT, seq: 1n, byteOffset: 0n, data: Buffer.from(`${argv.slice(1).join(' ')}\n`) } })
      sendResult(conn, assignmentId, 1)
    } else if (argv[0] === STREAM_COMMAND) {
      const streamer = new Streamer(conn, assignmentId, Number(argv[1]), Number(argv[2]))
      this.streams.set(assignmentId, streamer)
      streamer.pump()
    } else {
      sendResult(conn, assignmentId, 0, 'the simulated agent runs only echo and the stream command')
    }
  }
}
