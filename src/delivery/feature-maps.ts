// The maps that FEATURE(`mailertable'), FEATURE(`virtusertable') and
// FEATURE(`genericstable') name, opened once per configuration. The map spec
// is the FEATURE's first argument, or sendmail's default
// "hash -o /etc/mail/<feature>".

import type { Config, FeatureSpec } from '../config/types';
import { openMap, parseMapSpec, type LookupMap } from '../maps/map';

export type TableFeature = 'mailertable' | 'virtusertable' | 'genericstable';

const opened = new WeakMap<Config, Map<TableFeature, LookupMap | null>>();

export function findFeature(config: Config, name: string): FeatureSpec | undefined {
  return config.features.find((f) => f.name === name);
}

export function hasFeature(config: Config, name: string): boolean {
  return findFeature(config, name) !== undefined;
}

/**
 * Returns the map of a FEATURE, or undefined when the FEATURE is not used.
 * Errors opening or reading the map go to `onError`; the map is then empty.
 */
export function featureMap(config: Config, name: TableFeature, onError: (m: string) => void = () => undefined): LookupMap | undefined {
  let maps = opened.get(config);
  if (maps === undefined) {
    maps = new Map();
    opened.set(config, maps);
  }
  const cached = maps.get(name);
  if (cached !== undefined) {
    if (cached !== null) cached.refresh();
    return cached ?? undefined;
  }
  const feature = findFeature(config, name);
  if (feature === undefined) {
    maps.set(name, null);
    return undefined;
  }
  const spec = parseMapSpec(feature.args[0] && feature.args[0].trim() !== '' ? feature.args[0] : `hash -o /etc/mail/${name}`);
  const map = openMap(spec, onError);
  maps.set(name, map);
  return map;
}

/** Replaces %1 ... %9 in a map value with the lookup's arguments; %% is a percent sign. */
export function substituteArgs(value: string, args: string[]): string {
  return value.replace(/%([0-9%])/g, (whole, d: string) => {
    if (d === '%') return '%';
    const index = Number(d);
    return index === 0 ? whole : (args[index - 1] ?? '');
  });
}

/** Error results of the tables: "error:5.1.1:550 User unknown" or "error:nouser User unknown". */
export interface TableError {
  kind: 'error';
  status: 'permfail' | 'tempfail';
  dsn: string;
  /** Reply text with code, e.g. "550 5.1.1 User unknown". */
  reply: string;
  /** Status text as logged after "stat=", e.g. "User unknown". */
  text: string;
}

const ERROR_KEYWORDS: Record<string, { code: number; dsn: string }> = {
  nouser: { code: 550, dsn: '5.1.1' },
  nohost: { code: 550, dsn: '5.1.2' },
  unavailable: { code: 550, dsn: '5.0.0' },
  tempfail: { code: 451, dsn: '4.0.0' },
  noperm: { code: 550, dsn: '5.7.1' },
  dataerr: { code: 501, dsn: '5.6.0' },
  config: { code: 554, dsn: '5.3.5' },
};

/** Parses the part after "error:" of a table value. */
export function parseTableError(rest: string): TableError {
  let dsn: string | undefined;
  let text = rest.trim();
  let code: number | undefined;
  const withDsn = /^([245]\.\d{1,3}\.\d{1,3}):(.*)$/.exec(text);
  if (withDsn) {
    dsn = withDsn[1];
    text = withDsn[2].trim();
  } else {
    const keyword = /^([A-Za-z]+)[\s:]+(.*)$/.exec(text);
    const known = keyword ? ERROR_KEYWORDS[keyword[1].toLowerCase()] : undefined;
    if (keyword && known) {
      dsn = known.dsn;
      code = known.code;
      text = keyword[2].trim();
    }
  }
  const coded = /^([245]\d\d)\s+(.*)$/.exec(text);
  if (coded) {
    code = Number(coded[1]);
    text = coded[2];
  }
  const ownDsn = /^([245]\.\d{1,3}\.\d{1,3})\s+(.*)$/.exec(text);
  if (ownDsn) {
    dsn ??= ownDsn[1];
    text = ownDsn[2];
  }
  code ??= dsn?.startsWith('4') ? 451 : 550;
  dsn ??= code >= 500 ? '5.0.0' : '4.0.0';
  return { kind: 'error', status: code >= 500 ? 'permfail' : 'tempfail', dsn, reply: `${code} ${dsn} ${text}`, text };
}
