import { X509Certificate } from 'node:crypto'
import { isIP } from 'node:net'
import { connect, type PeerCertificate, type DetailedPeerCertificate } from 'node:tls'

export class PinError extends Error {
  override name = 'PinError'
}

/** `sha256:<64 hex>`: the form the enroll command takes (colons and case are tolerated). */
export function normaliseFingerprint(input: string): string {
  const hex = input.trim().toLowerCase().replace(/^sha256:/, '').replaceAll(':', '')
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new PinError('--ca-fingerprint must be sha256: followed by 64 hex digits')
  return `sha256:${hex}`
}

function fingerprintOf(der: Buffer): string {
  return `sha256:${new X509Certificate(der).fingerprint256.replaceAll(':', '').toLowerCase()}`
}

/** The pinned CA's fingerprint in the form enroll takes (`sha256:<hex>`), from its PEM. */
export function caFingerprint(pem: string): string {
  return fingerprintOf(new X509Certificate(pem).raw)
}

function chainOf(leaf: DetailedPeerCertificate): PeerCertificate[] {
  const chain: PeerCertificate[] = []
  let cert: DetailedPeerCertificate | undefined = leaf
  while (cert && cert.raw && !chain.some((c) => c.raw.equals(cert!.raw))) {
    chain.push(cert)
    cert = cert.issuerCertificate
  }
  return chain
}

/**
 * First contact with a controller whose CA we do not have yet: the operator gives us the CA's
 * fingerprint (from the enrollment token screen). We read the chain the server presents, take the
 * certificate with exactly that fingerprint as the CA, and then check the server certificate
 * ourselves — signed by that CA, valid now, issued for the host we dialled. Only then is the CA
 * trusted; every later connection verifies against it normally.
 */
export function fetchPinnedCa(host: string, port: number, fingerprint: string, timeoutMs = 10_000): Promise<string> {
  const wanted = normaliseFingerprint(fingerprint)
  return new Promise((resolve, reject) => {
    // The chain is checked by hand below against the pinned fingerprint, before anything is sent.
    const socket = connect({ host, port, servername: isIP(host) ? undefined : host, rejectUnauthorized: false, ALPNProtocols: ['h2'], timeout: timeoutMs })
    const fail = (err: Error) => {
      socket.destroy()
      reject(err)
    }
    socket.once('timeout', () => fail(new PinError(`no TLS answer from ${host}:${port} within ${timeoutMs} ms`)))
    socket.once('error', (err: NodeJS.ErrnoException) => fail(new PinError(`cannot reach ${host}:${port}: ${err.code ?? err.message}`)))
    socket.once('secureConnect', () => {
      try {
        const chain = chainOf(socket.getPeerCertificate(true))
        socket.end()
        resolve(verifyPinnedChain(chain.map((c) => c.raw), host, wanted))
      } catch (err) {
        fail(err as Error)
      }
    })
  })
}

/** More is a loop or a misconfiguration, not a real PKI. */
const MAX_INTERMEDIATES = 4

/** Pure check of a presented chain (DER, leaf first) against a pinned CA fingerprint and the dialled host. */
export function verifyPinnedChain(chain: Buffer[], host: string, wanted: string, now = new Date()): string {
  if (chain.length === 0) throw new PinError('the controller presented no certificate')
  const caDer = chain.find((der) => fingerprintOf(der) === wanted)
  if (!caDer) {
    throw new PinError(`the controller's CA does not match --ca-fingerprint ${wanted} (it presented ${chain.map(fingerprintOf).join(', ')})`)
  }
  const ca = new X509Certificate(caDer)
  const leaf = new X509Certificate(chain[0]!)
  if (!ca.ca) throw new PinError('the pinned certificate is not a CA certificate')
  const t = now.getTime()
  const validNow = (c: X509Certificate) => t >= Date.parse(c.validFrom) && t <= Date.parse(c.validTo)
  if (!validNow(leaf)) throw new PinError("the controller's certificate is not valid now")
  // Up from the server certificate through the presented intermediate CAs (each valid now and signed
  // by the next) to the pinned CA; later connections verify the same path against the pinned CA alone.
  const presented = chain.slice(1).map((der) => new X509Certificate(der))
  const signedBy = (c: X509Certificate, issuer: X509Certificate) => c.checkIssued(issuer) && c.verify(issuer.publicKey)
  let cert = leaf
  for (let hops = 0; !signedBy(cert, ca); hops++) {
    const issuer = presented.find((i) => i.ca && i.fingerprint256 !== cert.fingerprint256 && signedBy(cert, i))
    if (!issuer || hops >= MAX_INTERMEDIATES) throw new PinError("the controller's certificate is not signed by the pinned CA")
    if (!validNow(issuer)) throw new PinError(`the intermediate CA ${issuer.subject.replaceAll('\n', ', ')} is not valid now`)
    cert = issuer
  }
  const matches = isIP(host) ? leaf.checkIP(host) !== undefined : leaf.checkHost(host) !== undefined
  if (!matches) throw new PinError(`the controller's certificate is not issued for ${host}`)
  return ca.toString()
}
