// The effective configuration, built once by loadConfig() from the option table
// and handed to every other part. No other part reads configuration files.

/** One listening socket, from DAEMON_OPTIONS or O DaemonPortOptions. */
export interface DaemonSpec {
  name: string;
  addr: string;
  port: number;
  family: 'inet' | 'inet6';
  /** Single-letter modifiers from M=, e.g. "S" (no STARTTLS), "s" (smtps). */
  modifiers: string;
  /** Listen backlog, from Listen=. */
  listen: number;
  /** InputMailFilters= of this daemon (names separated by ";"); replaces the global option. */
  inputMailFilters?: string[];
}

/** A FEATURE(...) line as written, with its arguments unquoted. */
export interface FeatureSpec {
  name: string;
  args: string[];
  file: string;
  line: number;
}

/** A MAILER(...) line or an M line, with the port its TCP argv names. */
export interface MailerSpec {
  name: string;
  /** Port from `TCP $h PORT` in *_MAILER_ARGS, when given. */
  port?: number;
  /** P=, F= and A= of a .cf M line, as written (see src/delivery/cf-mailer.ts). */
  path?: string;
  flags?: string;
  argv?: string;
}

/** A mail filter from an X line, INPUT_MAIL_FILTER or MAIL_FILTER. */
export interface MailFilterSpec {
  name: string;
  /** The rest of the definition as written: `S=inet:8891@127.0.0.1, F=T, T=C:5m`. */
  equates: string;
  file: string;
  line: number;
}

export type SuperSafe = 'true' | 'false' | 'interactive' | 'postmilter';
export type DeliveryMode = 'background' | 'queueonly' | 'interactive' | 'deferred';

/** The value of an option after parsing, as stored in the option table. */
export type OptionValue = string | number | boolean | string[];

export interface Config {
  /** Every option that was set or has a default, by canonical name. */
  options: Map<string, OptionValue>;
  /** The place each option was set: "file:line", "-O", or "default". */
  origins: Map<string, string>;

  /** $j: this host's fully qualified name (confDOMAIN_NAME or os.hostname()). */
  hostName: string;
  /** Class w: names this host accepts mail for (LOCAL_DOMAIN, Cw, own names). */
  localDomains: Set<string>;
  /** Class R: domains this host relays for (RELAY_DOMAIN). */
  relayDomains: Set<string>;

  queueDirectory: string;
  /** Posthorn option: where the built-in local mailer appends mbox files. */
  mailboxDirectory: string;
  /** Posthorn option: DNS servers as "addr" or "addr:port" / "[v6]:port". */
  nameServers: string[];
  smartHost?: string;
  fallbackSmartHost?: string;
  superSafe: SuperSafe;
  deliveryMode: DeliveryMode;

  /** 0 means unlimited, as in sendmail. */
  maxMessageSize: number;
  maxRecipientsPerMessage: number;
  maxHeadersLength: number;
  /** Maximum SMTP command line length in bytes (sendmail: MAXLINE 2048). */
  maxLineLength: number;

  /** PrivacyOptions words in lower case (novrfy, noexpn, goaway, ...). */
  privacyOptions: Set<string>;
  /** Timeout.* values in milliseconds, keyed by the lower-case sub-option. */
  timeouts: Map<string, number>;

  daemons: DaemonSpec[];
  features: FeatureSpec[];
  mailers: MailerSpec[];
  /** Macros defined by the configuration (D lines, confDOMAIN_NAME, ...). */
  macros: Map<string, string>;

  /** Log destination: a file path, "stderr", or "syslog". */
  logFile: string;
  logLevel: number;
  pidFile: string;
  queueSortOrder: string;
  minQueueAge: number;
  /** The configuration file that was read, for -bP output and logs. */
  sourceFile: string;

  /** Classes by name without braces (`w`, `R`, `E`, `VirtHost`), with their words. */
  classes: Map<string, Set<string>>;
  /** Mail filter definitions in file order. InputMailFilters selects which of them run. */
  mailFilters: MailFilterSpec[];
  /**
   * m4 variables from a .mc file that no option holds, by name: mailer paths
   * and arguments (LOCAL_MAILER_PATH, CYRUSV2_MAILER_ARGS), confLOCAL_MAILER.
   */
  mcVariables?: Map<string, string>;
  /**
   * Things the reader accepted without acting on them and abbreviated option
   * names, one sentence each, for the caller to log at startup.
   */
  notices: string[];
}
