// Options with sub-options (Timeout.*, Milter.*) and the STARTTLS options.

import type { OptionDef } from './options';

const MINUTE = 60 * 1000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

export const TLS_OPTIONS: OptionDef[] = [
  { name: 'CACertFile', m4: 'confCACERT', type: 'path',
    description: 'PEM file of trusted CA certificates; their names are sent in the certificate request.', status: 'implemented' },
  { name: 'CACertPath', m4: 'confCACERT_PATH', type: 'path',
    description: 'Directory of trusted CA certificates; only files named `<subject hash>.<n>` (openssl rehash) are read.', status: 'implemented' },
  { name: 'CipherList', m4: 'confCIPHER_LIST', type: 'string',
    description: 'OpenSSL cipher list for STARTTLS (sendmail 8.15 and later); a list OpenSSL rejects is logged and ignored.', status: 'implemented' },
  { name: 'ClientCertFile', m4: 'confCLIENT_CERT', type: 'path',
    description: 'Certificate presented when delivering as an SMTP client.', status: 'implemented' },
  { name: 'ClientKeyFile', m4: 'confCLIENT_KEY', type: 'path',
    description: 'Unencrypted private key of ClientCertFile.', status: 'implemented' },
  { name: 'CRLFile', m4: 'confCRL', type: 'path',
    description: 'PEM certificate revocation list; if set but unreadable, STARTTLS is disabled.', status: 'implemented' },
  { name: 'DHParameters', m4: 'confDH_PARAMETERS', type: 'string',
    description: 'Diffie-Hellman parameters: a PEM file path; 1, 2, 5, i or unset use the built-in groups of Node; n or none turn DH off.', status: 'implemented' },
  { name: 'RandFile', m4: 'confRAND_FILE', type: 'string',
    description: 'Random seed source for TLS, `file:/path` or `egd:/path`; unused with /dev/urandom.', status: 'accepted' },
  { name: 'ServerCertFile', m4: 'confSERVER_CERT', type: 'path',
    description: 'Certificate presented to SMTP clients after STARTTLS.', status: 'implemented' },
  { name: 'ServerKeyFile', m4: 'confSERVER_KEY', type: 'path',
    description: 'Unencrypted private key of ServerCertFile.', status: 'implemented' },
  { name: 'TLSSrvOptions', m4: 'confTLS_SRV_OPTIONS', type: 'string',
    description: 'Server TLS flags: V = do not request a client certificate; C = no server certificate (anonymous DH, TLS 1.2).', status: 'implemented' },
];

const MILTER_STAGES = ['connect', 'helo', 'envfrom', 'envrcpt', 'data', 'eoh', 'eom'];

export const MILTER_OPTIONS: OptionDef[] = [
  { name: 'Milter.LogLevel', m4: 'confMILTER_LOG_LEVEL', type: 'number',
    description: 'Log level for milter events; unset uses LogLevel.' },
  ...MILTER_STAGES.map((stage): OptionDef => ({
    name: `Milter.macros.${stage}`,
    m4: `confMILTER_MACROS_${stage.toUpperCase()}`,
    type: 'list',
    default: [],
    description: `Macros sent to milters at the ${stage} stage, comma-separated (j, {daemon_name}, ...).`,
  })),
];

interface TimeoutRow {
  sub: string;
  unit: 's' | 'm' | 'h' | 'd';
  default: number;
  description: string;
}

// sendmail's defaults (readcf.c inittimeouts), except queuewarn: the binary
// never warns by default, Posthorn warns after 4 hours as most sites configure.
const TIMEOUTS: TimeoutRow[] = [
  { sub: 'initial', unit: 'm', default: 5 * MINUTE, description: 'wait for the greeting of a server' },
  { sub: 'connect', unit: 'm', default: 0, description: 'connect() to a server; 0 uses the system limit' },
  { sub: 'iconnect', unit: 'm', default: 0,
    description: 'first connect() to a server of a delivery attempt; 0 uses Timeout.connect' },
  { sub: 'aconnect', unit: 'm', default: 0,
    description: 'all connection attempts of one delivery together; 0 is unlimited' },
  { sub: 'helo', unit: 'm', default: 5 * MINUTE, description: 'reply to HELO or EHLO' },
  { sub: 'mail', unit: 'm', default: 10 * MINUTE, description: 'reply to MAIL' },
  { sub: 'rcpt', unit: 'm', default: HOUR, description: 'reply to RCPT' },
  { sub: 'datainit', unit: 'm', default: 5 * MINUTE, description: 'reply to DATA' },
  { sub: 'datablock', unit: 'm', default: HOUR, description: 'each read or write of message data' },
  { sub: 'datafinal', unit: 'm', default: HOUR, description: 'reply to the final dot' },
  { sub: 'rset', unit: 'm', default: 5 * MINUTE, description: 'reply to RSET' },
  { sub: 'quit', unit: 'm', default: 2 * MINUTE, description: 'reply to QUIT' },
  { sub: 'misc', unit: 'm', default: 2 * MINUTE, description: 'reply to NOOP and VERB' },
  { sub: 'command', unit: 'm', default: HOUR, description: 'as a server, wait for the next command' },
  { sub: 'ident', unit: 'm', default: 5000, description: 'RFC 1413 ident query; 0 turns ident off' },
  { sub: 'fileopen', unit: 'm', default: 60000, description: 'open a file, e.g. on NFS' },
  { sub: 'control', unit: 'm', default: 2 * MINUTE, description: 'a command on the control socket' },
  { sub: 'lhlo', unit: 'm', default: 2 * MINUTE, description: 'reply to LHLO (LMTP)' },
  { sub: 'auth', unit: 'm', default: 10 * MINUTE, description: 'an SMTP AUTH exchange' },
  { sub: 'starttls', unit: 'm', default: HOUR, description: 'reply to STARTTLS and the TLS handshake' },
  { sub: 'hoststatus', unit: 'm', default: 30 * MINUTE, description: 'how long a cached host status stays valid' },
  { sub: 'resolver.retrans', unit: 's', default: 5000,
    description: 'DNS retransmission interval; also sets .first and .normal' },
  { sub: 'resolver.retrans.first', unit: 's', default: 5000,
    description: 'DNS retransmission interval for the first attempt of a delivery' },
  { sub: 'resolver.retrans.normal', unit: 's', default: 5000,
    description: 'DNS retransmission interval for later attempts' },
];

const QUEUE_CLASSES = ['', '.normal', '.urgent', '.non-urgent', '.dsn'];

function queueTimeouts(kind: 'queuereturn' | 'queuewarn'): TimeoutRow[] {
  const unit = kind === 'queuereturn' ? 'd' : 'h';
  const value = kind === 'queuereturn' ? 5 * DAY : 4 * HOUR;
  const what = kind === 'queuereturn' ? 'bounce a message still undelivered after' : 'warn the sender after';
  return QUEUE_CLASSES.map((suffix) => ({
    sub: kind + suffix,
    unit,
    default: value,
    description: suffix === ''
      ? `${what} this long; also sets the .normal, .urgent, .non-urgent and .dsn forms`
      : `${what} this long, for Precedence ${suffix.slice(1)} mail`,
  }));
}

function timeoutM4(sub: string): string {
  const words = sub.replace('non-urgent', 'nonurgent').split('.');
  return 'confTO_' + words.join('_').toUpperCase();
}

const RESOLVER_RETRY_SUBS = ['resolver.retry', 'resolver.retry.first', 'resolver.retry.normal'];

export const TIMEOUT_OPTIONS: OptionDef[] = [
  { name: 'Timeout', short: 'r', type: 'string',
    description: 'Old form: a time for all of mail, rcpt, datainit, datablock, datafinal and command, '
      + 'or a comma-separated list of name=time.' },
  ...[...TIMEOUTS, ...queueTimeouts('queuereturn'), ...queueTimeouts('queuewarn')].map(
    (row): OptionDef => ({
      name: `Timeout.${row.sub}`,
      m4: timeoutM4(row.sub),
      type: 'duration',
      unit: row.unit,
      default: row.default,
      description: row.description.charAt(0).toUpperCase() + row.description.slice(1) + '.',
      status: 'implemented',
    }),
  ),
  ...RESOLVER_RETRY_SUBS.map((sub): OptionDef => ({
    name: `Timeout.${sub}`,
    m4: timeoutM4(sub),
    type: 'number',
    default: 4,
    description: sub === 'resolver.retry'
      ? 'Number of DNS query attempts; also sets .first and .normal.'
      : 'Number of DNS query attempts.',
  })),
];
