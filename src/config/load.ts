// loadConfig(): read a .mc or .cf file, apply -O overrides, and build the
// Config every other part receives.

import * as fs from 'node:fs';
import * as os from 'node:os';
import type { Config, DeliveryMode, OptionValue, SuperSafe } from './types';
import { ConfigBuilder } from './builder';
import { ConfigError, type Location } from './errors';
import { OPTIONS } from './options';
import { GOAWAY_WORDS } from './options-m-z';
import { readMc } from './mc';
import { readCf } from './cf';
import { expandMacros } from './macros';
import { DEFAULT_LISTEN_BACKLOG } from './daemon-options';

export { ConfigError } from './errors';
export { parseShortOption } from './resolve';

export interface LoadParams {
  /** The .mc or .cf file; without one, only defaults and overrides apply. */
  file?: string;
  /** -O Name=value settings, applied after the file so they win. */
  overrides?: Array<{ name: string; value: string }>;
  /** Environment; POSTHORN_CONFIG names the file when `file` is not given. */
  env?: NodeJS.ProcessEnv;
}

const OVERRIDE_PLACE: Location = { file: '-O', line: 0 };

/** Build the effective configuration. Throws ConfigError for any invalid setting. */
export function loadConfig(params: LoadParams): Config {
  const builder = new ConfigBuilder();
  const file = params.file ?? params.env?.POSTHORN_CONFIG;
  if (file !== undefined && file !== '') {
    readConfigFile(file, builder);
  }

  builder.beginOverrides();
  for (const override of params.overrides ?? []) {
    builder.setOption(override.name, override.value, OVERRIDE_PLACE);
  }
  return buildConfig(builder, file ?? '');
}

function readConfigFile(file: string, builder: ConfigBuilder): void {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    const reason = (err as Error).message;
    throw new ConfigError({ file, line: 0 }, file, `cannot read configuration file: ${reason}`);
  }
  if (isMcFile(file, text)) {
    readMc(text, file, builder);
  } else {
    readCf(text, file, builder);
  }
}

/** Decide whether a file is .mc: by its extension, or by m4 words when it has neither .mc nor .cf. */
export function isMcFile(file: string, text: string): boolean {
  if (file.endsWith('.mc')) {
    return true;
  }
  if (file.endsWith('.cf')) {
    return false;
  }
  return /\bdnl\b|\b(divert|define|FEATURE|MAILER|OSTYPE|VERSIONID)\(/.test(text);
}

function buildConfig(builder: ConfigBuilder, sourceFile: string): Config {
  fillDefaults(builder);
  checkMailFilters(builder);
  checkQueueDirectoryName(builder);
  const options = builder.values;
  const hostName = findHostName(builder);

  const superSafe = options.get('SuperSafe') as SuperSafe;
  const deliveryMode = options.get('DeliveryMode') as DeliveryMode;
  if (superSafe === 'interactive' && deliveryMode !== 'interactive') {
    builder.notices.push('WARNING: SuperSafe=interactive should only be used with DeliveryMode=interactive');
  }

  const smartHost = stringOption(options, 'SmartHost');
  const fallbackSmartHost = stringOption(options, 'FallBackSmartHost');
  return {
    options,
    origins: builder.origins,
    hostName,
    localDomains: localDomains(builder, hostName),
    relayDomains: lowerCaseSet(builder.classes.get('R') ?? []),
    queueDirectory: options.get('QueueDirectory') as string,
    mailboxDirectory: options.get('MailboxDirectory') as string,
    nameServers: options.get('NameServers') as string[],
    ...(smartHost === '' ? {} : { smartHost }),
    ...(fallbackSmartHost === '' ? {} : { fallbackSmartHost }),
    superSafe,
    deliveryMode,
    maxMessageSize: options.get('MaxMessageSize') as number,
    maxRecipientsPerMessage: options.get('MaxRecipientsPerMessage') as number,
    maxHeadersLength: options.get('MaxHeadersLength') as number,
    maxLineLength: options.get('MaxLineLength') as number,
    privacyOptions: privacyOptions(options.get('PrivacyOptions') as string[]),
    timeouts: timeouts(options),
    daemons: builder.daemons.length > 0 ? builder.daemons : [defaultDaemon()],
    features: builder.features,
    mailers: builder.mailers,
    macros: builder.macros,
    logFile: options.get('LogFile') as string,
    logLevel: options.get('LogLevel') as number,
    pidFile: options.get('PidFile') as string,
    queueSortOrder: options.get('QueueSortOrder') as string,
    minQueueAge: options.get('MinQueueAge') as number,
    sourceFile,
    classes: builder.classes,
    mailFilters: builder.mailFilters,
    notices: builder.notices,
    mcVariables: builder.variables,
  };
}

function fillDefaults(builder: ConfigBuilder): void {
  const cpus = Math.max(1, os.availableParallelism());
  const computed: Record<string, number> = { QueueLA: 8 * cpus, RefuseLA: 12 * cpus };
  for (const def of OPTIONS) {
    const value = def.default ?? computed[def.name];
    if (value !== undefined && !builder.values.has(def.name)) {
      builder.values.set(def.name, value);
      builder.origins.set(def.name, 'default');
    }
  }
}

// sendmail: "InputFilter <name> not defined" when no X line defines a listed filter.
function checkMailFilters(builder: ConfigBuilder): void {
  const defined = new Set(builder.mailFilters.map((filter) => filter.name));
  const listed = builder.values.get('InputMailFilters') as string[];
  for (const name of listed) {
    if (!defined.has(name)) {
      throw new ConfigError(parseOrigin(builder.origins.get('InputMailFilters')), name,
        `InputFilter ${name} not defined`);
    }
  }
  for (const daemon of builder.daemons) {
    for (const name of daemon.inputMailFilters ?? []) {
      if (!defined.has(name)) {
        throw new ConfigError(parseOrigin(builder.origins.get('DaemonPortOptions')), name,
          `InputFilter ${name} not defined`);
      }
    }
  }
}

// sendmail 8.17 takes an empty QueueDirectory as "mqueue" below its working
// directory and then fails to chdir there. Posthorn rejects it at once.
function checkQueueDirectoryName(builder: ConfigBuilder): void {
  if (builder.values.get('QueueDirectory') !== '') return;
  throw new ConfigError(parseOrigin(builder.origins.get('QueueDirectory')), 'QueueDirectory',
    'QueueDirectory is empty. Set it to the queue directory, e.g. /var/spool/mqueue.');
}

function parseOrigin(origin: string | undefined): Location {
  const match = /^(.*):(\d+)$/.exec(origin ?? '');
  return match === null ? { file: origin ?? '', line: 0 } : { file: match[1], line: Number(match[2]) };
}

// $j from the configuration (confDOMAIN_NAME, Dj), or the system host name as it is.
function findHostName(builder: ConfigBuilder): string {
  const systemName = os.hostname();
  const configured = builder.macros.get('j');
  if (configured === undefined || configured === '') {
    return systemName;
  }
  const shortName = systemName.split('.')[0];
  return expandMacros(configured, (name) => (name === 'w' ? shortName : builder.macros.get(name)));
}

function stringOption(options: Map<string, OptionValue>, name: string): string {
  const value = options.get(name);
  return typeof value === 'string' ? value.trim() : '';
}

function lowerCaseSet(words: Iterable<string>): Set<string> {
  return new Set([...words].map((word) => word.toLowerCase()));
}

/** Class w plus this host's own names, in lower case. */
function localDomains(builder: ConfigBuilder, hostName: string): Set<string> {
  const names = lowerCaseSet(builder.classes.get('w') ?? []);
  names.add(hostName.toLowerCase());
  names.add('localhost');
  names.add('[127.0.0.1]');
  return names;
}

function privacyOptions(words: string[]): Set<string> {
  const set = new Set(words);
  if (set.has('goaway')) {
    for (const word of GOAWAY_WORDS) set.add(word);
  }
  return set;
}

function timeouts(options: Map<string, OptionValue>): Map<string, number> {
  const map = new Map<string, number>();
  for (const def of OPTIONS) {
    const value = options.get(def.name);
    if (def.name.startsWith('Timeout.') && def.type === 'duration' && typeof value === 'number') {
      map.set(def.name.slice('Timeout.'.length).toLowerCase(), value);
    }
  }
  return map;
}

function defaultDaemon(): Config['daemons'][number] {
  return {
    name: 'MTA',
    addr: '0.0.0.0',
    port: 25,
    family: 'inet',
    modifiers: '',
    listen: DEFAULT_LISTEN_BACKLOG,
  };
}
