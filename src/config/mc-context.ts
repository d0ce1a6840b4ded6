// State shared by the .mc reader and the handlers of its macros.

import type { ConfigBuilder } from './builder';
import type { Location } from './errors';

export interface McState {
  /** Current m4 diversion: text is copied to the cf only when it is 0 or more. */
  divert: number;
  /** Names given to define(), for ifdef(). */
  defined: Set<string>;
  /** Accepted m4 variables that Posthorn does not act on (mailer paths, confCW_FILE, ...). */
  variables: Map<string, string>;
  /** *_MAILER_ARGS values by mailer name (esmtp, relay, ...). */
  mailerArgs: Map<string, string>;
  /** Mailers already defined by MAILER(), whose arguments can no longer change. */
  mailersDone: Set<string>;
  /** Values given to define() as written, which a later unquoted use of the name expands to. */
  m4Values: Map<string, string>;
  /** False once include(`.../cf.m4') was read, because its changecom() makes `#` plain text. */
  comments: boolean;
  /** The latest define(`confPRIVACY_FLAGS'): a second define replaces the first, as in m4. */
  privacyFlags?: { value: string; where: Location };
}

export interface McContext {
  builder: ConfigBuilder;
  state: McState;
  /** Location of the macro call being handled. */
  where: Location;
  /** Read more .mc text in the current state, for include() and ifdef(). */
  readText(text: string, where: Location): void;
  /** A value as m4 would copy it to the .cf: quotes removed once, defined names expanded. */
  rescan(value: string): string;
}
