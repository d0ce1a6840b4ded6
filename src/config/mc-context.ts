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
}

export interface McContext {
  builder: ConfigBuilder;
  state: McState;
  /** Location of the macro call being handled. */
  where: Location;
  /** Read more .mc text in the current state, for include() and ifdef(). */
  readText(text: string, where: Location): void;
}
