// sendmail-style log records: "<id>: from=<...>, size=..., ..." with the queue id
// or session id as the first field of every line. Lines go to stderr, to a file,
// or to a syslog server over UDP on loopback.

import * as fs from 'node:fs';
import * as dgram from 'node:dgram';
import * as os from 'node:os';

export type Severity = 'err' | 'warning' | 'notice' | 'info' | 'debug';

const SYSLOG_SEVERITY: Record<Severity, number> = {
  err: 3,
  warning: 4,
  notice: 5,
  info: 6,
  debug: 7,
};

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** Formats a time as syslog does: "Dec  4 16:10:48". */
export function syslogTime(d: Date): string {
  const day = String(d.getDate()).padStart(2, ' ');
  const hh = String(d.getHours()).padStart(2, '0');
  const mm = String(d.getMinutes()).padStart(2, '0');
  const ss = String(d.getSeconds()).padStart(2, '0');
  return `${MONTHS[d.getMonth()]} ${day} ${hh}:${mm}:${ss}`;
}

export interface LogSink {
  write(severity: Severity, line: string): void;
  close(): void;
}

export class StreamSink implements LogSink {
  constructor(
    private readonly fd: number,
    private readonly ownsFd: boolean,
  ) {}

  write(_severity: Severity, line: string): void {
    const text = `${linePrefix()}${line}\n`;
    try {
      fs.writeSync(this.fd, text);
    } catch {
      // A full disk or a closed stderr must not stop mail handling.
    }
  }

  close(): void {
    if (this.ownsFd) fs.closeSync(this.fd);
  }
}

let prefixSecond = -1;
let prefix = '';

/**
 * "Dec  4 16:10:48 host posthorn[pid]: ", built once a second instead of once a
 * line (os.hostname() is a system call).
 */
function linePrefix(): string {
  const now = Date.now();
  const second = Math.floor(now / 1000);
  if (second !== prefixSecond) {
    prefixSecond = second;
    prefix = `${syslogTime(new Date(now))} ${os.hostname()} posthorn[${process.pid}]: `;
  }
  return prefix;
}

class SyslogSink implements LogSink {
  private readonly socket = dgram.createSocket('udp4');

  constructor(
    private readonly host: string,
    private readonly port: number,
  ) {
    this.socket.unref();
  }

  write(severity: Severity, line: string): void {
    const mailFacility = 2;
    const pri = mailFacility * 8 + SYSLOG_SEVERITY[severity];
    const msg = `<${pri}>${syslogTime(new Date())} ${os.hostname()} posthorn[${process.pid}]: ${line}`;
    this.socket.send(Buffer.from(msg), this.port, this.host);
  }

  close(): void {
    this.socket.close();
  }
}

/**
 * Opens a sink from a LogFile value: "stderr", "syslog" (UDP 127.0.0.1:514),
 * "syslog:HOST:PORT", or a file path opened for appending.
 */
export function openSink(dest: string): LogSink {
  if (dest === '' || dest === 'stderr') return new StreamSink(2, false);
  if (dest === 'syslog') return new SyslogSink('127.0.0.1', 514);
  if (dest.startsWith('syslog:')) {
    const rest = dest.slice('syslog:'.length);
    const colon = rest.lastIndexOf(':');
    return new SyslogSink(rest.slice(0, colon), Number(rest.slice(colon + 1)));
  }
  return new StreamSink(fs.openSync(dest, 'a'), true);
}

/** Control bytes other than tab; CR and LF are joined into a space before this test. */
const CONTROL_BYTES = /[\x00-\x08\x0b-\x1f\x7f]/;
const CONTROL_BYTES_ALL = /[\x00-\x08\x0b-\x1f\x7f]/g;

export class Logger {
  private sinks: LogSink[];

  constructor(
    sinks: LogSink[],
    /** sendmail LogLevel: records above this level are dropped. */
    public level = 9,
    private readonly prefix = '',
  ) {
    this.sinks = sinks;
  }

  /** Returns a logger whose lines start with "<id>: ". */
  child(id: string): Logger {
    const child = new Logger(this.sinks, this.level, `${id}: `);
    return child;
  }

  /** Writes one record if `level` is at most the configured LogLevel. */
  log(level: number, severity: Severity, text: string): void {
    if (level > this.level) return;
    let line = this.prefix + text.replace(/[\r\n]+/g, ' ');
    // Text from clients and next hops can hold ESC sequences or a NUL, which a
    // terminal showing the log would act on; '?' stands for each, as in replies.
    if (CONTROL_BYTES.test(line)) line = line.replace(CONTROL_BYTES_ALL, '?');
    for (const sink of this.sinks) sink.write(severity, line);
  }

  info(text: string, level = 5): void {
    this.log(level, 'info', text);
  }

  notice(text: string, level = 5): void {
    this.log(level, 'notice', text);
  }

  warn(text: string, level = 3): void {
    this.log(level, 'warning', text);
  }

  error(text: string, level = 1): void {
    this.log(level, 'err', text);
  }

  /** Replaces the destinations, e.g. after the configuration is loaded. */
  setSinks(sinks: LogSink[]): void {
    for (const s of this.sinks) s.close();
    this.sinks.length = 0;
    this.sinks.push(...sinks);
  }
}

/** A logger for code that runs before the configuration is known. */
export const bootLogger = new Logger([openSink('stderr')]);
