import type { CredentialInput, CredentialType } from './data.ts'

/*
 * The form of each credential type: which fields, how they are entered, and which are secret
 * (write-only: never shown, empty on edit, "leave empty to keep"). Field names are checked against
 * the controller's own input schema, so a renamed field fails the type-check here.
 */

type Of<T extends CredentialType> = Extract<CredentialInput, { type: T }>
export type FieldName<T extends CredentialType> = Exclude<keyof Of<T>, 'type' | 'name' | 'description'> & string

export type FieldKind = 'text' | 'number' | 'select' | 'secret' | 'secret-area' | 'pem' | 'headers'

/** The form's values: every field as text (headers as rows). */
export interface Values {
  [field: string]: string
}

export interface FieldSpec<T extends CredentialType = CredentialType> {
  name: FieldName<T>
  label: string
  kind: FieldKind
  options?: readonly (readonly [string, string])[]
  /** May be left empty (not sent; on edit, an emptied public field is cleared). */
  optional?: boolean
  hint?: string
  placeholder?: string
  /** The initial value of a new credential's select. */
  initial?: string
  /** Offer "load from file" next to the input. */
  file?: boolean
  /** Shown only when this holds (depends on the scheme, version…). */
  when?: (v: Values) => boolean
  autocomplete?: string
}

type Specs = { [T in CredentialType]: FieldSpec<T>[] }

const username = <T extends CredentialType>(name: FieldName<T>, when?: (v: Values) => boolean): FieldSpec<T> => ({ name, label: 'Username', kind: 'text', autocomplete: 'off', ...(when ? { when } : {}) })

export const SPECS: Specs = {
  ssh_key: [
    username('username'),
    { name: 'private_key', label: 'Private key', kind: 'secret-area', file: true, placeholder: '-----BEGIN OPENSSH PRIVATE KEY-----', hint: 'OpenSSH or PEM format: Ed25519, ECDSA or RSA' },
    { name: 'passphrase', label: 'Key passphrase', kind: 'secret', optional: true, hint: 'Only if the key is encrypted' },
  ],
  ssh_password: [username('username'), { name: 'password', label: 'Password', kind: 'secret' }],
  winrm: [
    username('username'),
    { name: 'password', label: 'Password', kind: 'secret' },
    { name: 'domain', label: 'Domain', kind: 'text', optional: true, hint: 'For domain accounts (NTLM)' },
    { name: 'auth', label: 'Authentication', kind: 'select', options: [['ntlm', 'NTLM'], ['basic', 'Basic']], initial: 'ntlm' },
    { name: 'transport', label: 'Transport', kind: 'select', options: [['https', 'HTTPS'], ['http', 'HTTP']], initial: 'https' },
  ],
  http_auth: [
    { name: 'scheme', label: 'Scheme', kind: 'select', options: [['basic', 'Basic (username and password)'], ['bearer', 'Bearer token'], ['api_key', 'API key header'], ['headers', 'Custom headers']], initial: 'basic' },
    username('username', (v) => v.scheme === 'basic'),
    { name: 'password', label: 'Password', kind: 'secret', when: (v) => v.scheme === 'basic' },
    { name: 'token', label: 'Token', kind: 'secret', when: (v) => v.scheme === 'bearer' },
    { name: 'header_name', label: 'Header name', kind: 'text', placeholder: 'X-API-Key', when: (v) => v.scheme === 'api_key' },
    { name: 'api_key', label: 'API key', kind: 'secret', when: (v) => v.scheme === 'api_key' },
    { name: 'headers', label: 'Headers', kind: 'headers', when: (v) => v.scheme === 'headers', hint: 'Sent with every request; the values are secret' },
  ],
  database: [
    { name: 'driver', label: 'Database', kind: 'select', options: [['postgres', 'PostgreSQL'], ['mysql', 'MySQL / MariaDB']], initial: 'postgres' },
    { name: 'host', label: 'Host', kind: 'text', autocomplete: 'off' },
    { name: 'port', label: 'Port', kind: 'number', optional: true, hint: 'Empty: 5432 for PostgreSQL, 3306 for MySQL' },
    { name: 'database', label: 'Database name', kind: 'text' },
    username('username'),
    { name: 'password', label: 'Password', kind: 'secret' },
    {
      name: 'tls_mode',
      label: 'TLS',
      kind: 'select',
      options: [
        ['verify_full', 'Verify certificate and host name'],
        ['verify_ca', 'Verify certificate only'],
        ['require', 'Encrypt, do not verify'],
        ['disable', 'No TLS'],
      ],
      initial: 'verify_full',
    },
    { name: 'tls_ca', label: 'CA certificate (PEM)', kind: 'pem', optional: true, file: true, when: (v) => v.tls_mode !== 'disable', hint: 'Verify the server against this CA instead of the system store' },
  ],
  snmp: [
    { name: 'version', label: 'SNMP version', kind: 'select', options: [['v2c', 'v2c (community)'], ['v3', 'v3 (user)']], initial: 'v2c' },
    { name: 'community', label: 'Community', kind: 'secret', when: (v) => v.version === 'v2c' },
    username('username', (v) => v.version === 'v3'),
    { name: 'auth_protocol', label: 'Authentication protocol', kind: 'select', optional: true, options: [['', 'None'], ['sha', 'SHA'], ['md5', 'MD5']], initial: '', when: (v) => v.version === 'v3' },
    { name: 'auth_password', label: 'Authentication password', kind: 'secret', optional: true, when: (v) => v.version === 'v3' && v.auth_protocol !== '' },
    { name: 'priv_protocol', label: 'Privacy protocol', kind: 'select', optional: true, options: [['', 'None'], ['aes', 'AES'], ['des', 'DES']], initial: '', when: (v) => v.version === 'v3' && v.auth_protocol !== '' },
    { name: 'priv_password', label: 'Privacy password', kind: 'secret', optional: true, when: (v) => v.version === 'v3' && v.auth_protocol !== '' && v.priv_protocol !== '' },
  ],
  certificate: [
    { name: 'certificate', label: 'Certificate (PEM)', kind: 'pem', file: true, placeholder: '-----BEGIN CERTIFICATE-----', hint: 'The client certificate first, then any intermediates' },
    { name: 'private_key', label: 'Private key (PEM)', kind: 'secret-area', file: true, placeholder: '-----BEGIN PRIVATE KEY-----' },
    { name: 'passphrase', label: 'Key passphrase', kind: 'secret', optional: true, hint: 'Only if the key is encrypted' },
    { name: 'ca', label: 'CA certificate (PEM)', kind: 'pem', optional: true, file: true },
  ],
}

export const isSecret = (kind: FieldKind) => kind === 'secret' || kind === 'secret-area' || kind === 'headers'

/** Fields whose change replaces every other field of the credential (the server starts afresh). */
export const VARIANT: Partial<Record<CredentialType, string>> = { http_auth: 'scheme', snmp: 'version' }

/** Derived facts the controller adds at save time, with labels, in display order. */
export const DERIVED_LABELS: Record<string, string> = {
  key_type: 'Key type',
  bits: 'Key size (bits)',
  fingerprint: 'Fingerprint',
  encrypted: 'Encrypted key',
  public_key: 'Public key',
  subject: 'Subject',
  issuer: 'Issuer',
  serial_number: 'Serial number',
  not_before: 'Valid from',
  not_after: 'Valid until',
  chain_length: 'Intermediate certificates',
  header_names: 'Header names',
  security_level: 'Security level',
}
