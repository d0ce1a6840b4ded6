// An authoritative DNS server on loopback for tests: UDP and TCP on one port,
// with its own small wire codec (RFC 1035 section 4). It serves A, AAAA, MX,
// TXT, PTR and CNAME from an in-memory zone. A test can set a name to get
// SERVFAIL, NXDOMAIN or no response at all.

import * as dgram from 'node:dgram';
import * as net from 'node:net';

export type DnsRecord =
  | { type: 'A'; address: string }
  | { type: 'AAAA'; address: string }
  | { type: 'MX'; preference: number; exchange: string }
  | { type: 'TXT'; text: string | string[] }
  | { type: 'PTR'; name: string }
  | { type: 'CNAME'; name: string };

export type DnsMode = 'servfail' | 'timeout' | 'nxdomain' | 'normal';

export interface DnsServer {
  port: number;
  address: string;
  /** Replaces every record of a name; an empty list makes the name exist without data. */
  setRecords(name: string, records: DnsRecord[]): void;
  /** Sets the response mode of a name; the name "*" applies to every name. */
  setMode(name: string, mode: DnsMode): void;
  /** Number of queries received so far, by "name/TYPE". */
  queries: Map<string, number>;
  close(): Promise<void>;
}

const TYPE_CODES: Record<DnsRecord['type'], number> = {
  A: 1,
  CNAME: 5,
  PTR: 12,
  MX: 15,
  TXT: 16,
  AAAA: 28,
};

const RCODE_SERVFAIL = 2;
const RCODE_NXDOMAIN = 3;
const RCODE_NOTIMP = 4;

interface Question {
  id: number;
  flags: number;
  name: string;
  qtype: number;
  qclass: number;
}

function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** Reads a possibly compressed domain name starting at `offset`. */
export function readName(msg: Buffer, offset: number): { name: string; next: number } {
  const labels: string[] = [];
  let pos = offset;
  let next = -1;
  for (let jumps = 0; jumps < 64; jumps++) {
    const len = msg[pos];
    if (len === undefined) throw new Error('DNS name runs past the message end');
    if ((len & 0xc0) === 0xc0) {
      if (next < 0) next = pos + 2;
      pos = ((len & 0x3f) << 8) | msg[pos + 1];
      continue;
    }
    if (len === 0) {
      return { name: labels.join('.'), next: next < 0 ? pos + 1 : next };
    }
    labels.push(msg.toString('latin1', pos + 1, pos + 1 + len));
    pos += 1 + len;
  }
  throw new Error('DNS name has too many compression pointers');
}

/** Parses the header and first question of a query. */
export function parseQuery(msg: Buffer): Question {
  if (msg.length < 12) throw new Error('DNS message shorter than its header');
  const qdcount = msg.readUInt16BE(4);
  if (qdcount < 1) throw new Error('DNS query has no question');
  const { name, next } = readName(msg, 12);
  return {
    id: msg.readUInt16BE(0),
    flags: msg.readUInt16BE(2),
    name,
    qtype: msg.readUInt16BE(next),
    qclass: msg.readUInt16BE(next + 2),
  };
}

/** Encodes a name as uncompressed labels; "" and "." are the root. */
export function encodeName(name: string): Buffer {
  const parts: Buffer[] = [];
  for (const label of normalize(name).split('.')) {
    if (label === '') continue;
    const bytes = Buffer.from(label, 'latin1');
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  return Buffer.concat(parts);
}

function encodeIPv6(address: string): Buffer {
  const out = Buffer.alloc(16);
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const headGroups = head ? head.split(':') : [];
  const tailGroups = tail ? tail.split(':') : [];
  headGroups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), i * 2));
  tailGroups.forEach((g, i) => out.writeUInt16BE(parseInt(g, 16), 16 - (tailGroups.length - i) * 2));
  return out;
}

function encodeRdata(record: DnsRecord): Buffer {
  switch (record.type) {
    case 'A':
      return Buffer.from(record.address.split('.').map(Number));
    case 'AAAA':
      return encodeIPv6(record.address);
    case 'MX': {
      const pref = Buffer.alloc(2);
      pref.writeUInt16BE(record.preference);
      return Buffer.concat([pref, encodeName(record.exchange)]);
    }
    case 'TXT': {
      const strings = typeof record.text === 'string' ? [record.text] : record.text;
      return Buffer.concat(
        strings.map((s) => {
          const bytes = Buffer.from(s, 'utf8');
          return Buffer.concat([Buffer.from([bytes.length]), bytes]);
        }),
      );
    }
    case 'PTR':
    case 'CNAME':
      return encodeName(record.name);
  }
}

function encodeAnswer(owner: string, record: DnsRecord): Buffer {
  const rdata = encodeRdata(record);
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(TYPE_CODES[record.type], 0);
  fixed.writeUInt16BE(1, 2);
  fixed.writeUInt32BE(60, 4);
  fixed.writeUInt16BE(rdata.length, 8);
  return Buffer.concat([encodeName(owner), fixed, rdata]);
}

/** Builds a response carrying the question and the given answers. */
export function encodeResponse(q: Question, rcode: number, answers: Buffer[]): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(q.id, 0);
  const rd = q.flags & 0x0100;
  header.writeUInt16BE(0x8000 | 0x0400 | rd | 0x0080 | rcode, 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  const question = Buffer.alloc(4);
  question.writeUInt16BE(q.qtype, 0);
  question.writeUInt16BE(q.qclass, 2);
  return Buffer.concat([header, encodeName(q.name), question, ...answers]);
}

class Zone {
  readonly records = new Map<string, DnsRecord[]>();
  readonly modes = new Map<string, DnsMode>();
  readonly queries = new Map<string, number>();

  constructor(zones: Record<string, DnsRecord[]>) {
    for (const [name, list] of Object.entries(zones)) this.records.set(normalize(name), list);
  }

  modeOf(name: string): DnsMode {
    return this.modes.get(normalize(name)) ?? this.modes.get('*') ?? 'normal';
  }

  /** Returns the response bytes, or undefined to stay silent. */
  answer(query: Buffer): Buffer | undefined {
    let q: Question;
    try {
      q = parseQuery(query);
    } catch {
      return undefined;
    }
    const typeName = Object.entries(TYPE_CODES).find(([, code]) => code === q.qtype)?.[0] ?? String(q.qtype);
    const key = `${normalize(q.name)}/${typeName}`;
    this.queries.set(key, (this.queries.get(key) ?? 0) + 1);

    const mode = this.modeOf(q.name);
    if (mode === 'timeout') return undefined;
    if (mode === 'servfail') return encodeResponse(q, RCODE_SERVFAIL, []);
    if (mode === 'nxdomain') return encodeResponse(q, RCODE_NXDOMAIN, []);
    if (!Object.values(TYPE_CODES).includes(q.qtype)) return encodeResponse(q, RCODE_NOTIMP, []);
    return this.lookup(q);
  }

  private lookup(q: Question): Buffer {
    const answers: Buffer[] = [];
    let owner = normalize(q.name);
    for (let hops = 0; hops < 8; hops++) {
      const list = this.records.get(owner);
      if (list === undefined) {
        const rcode = answers.length > 0 ? 0 : RCODE_NXDOMAIN;
        return encodeResponse(q, rcode, answers);
      }
      const cname = list.find((r) => r.type === 'CNAME');
      if (cname && cname.type === 'CNAME' && q.qtype !== TYPE_CODES.CNAME) {
        answers.push(encodeAnswer(owner, cname));
        owner = normalize(cname.name);
        continue;
      }
      for (const r of list) {
        if (TYPE_CODES[r.type] === q.qtype) answers.push(encodeAnswer(owner, r));
      }
      return encodeResponse(q, 0, answers);
    }
    return encodeResponse(q, RCODE_SERVFAIL, []);
  }
}

function serveTcp(zone: Zone, socket: net.Socket): void {
  let buffered = Buffer.alloc(0);
  socket.on('error', () => socket.destroy());
  socket.on('data', (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2) {
      const len = buffered.readUInt16BE(0);
      if (buffered.length < 2 + len) return;
      const response = zone.answer(buffered.subarray(2, 2 + len));
      buffered = buffered.subarray(2 + len);
      if (response) {
        const prefix = Buffer.alloc(2);
        prefix.writeUInt16BE(response.length);
        socket.write(Buffer.concat([prefix, response]));
      }
    }
  });
}

/**
 * Binds TCP on a free port, then UDP on the same port. Another program may
 * hold that UDP port, so a few ports are tried.
 */
async function bindBoth(
  host: string,
  zone: Zone,
  sockets: Set<net.Socket>,
): Promise<{ tcp: net.Server; udp: dgram.Socket; port: number }> {
  for (let attempt = 0; ; attempt++) {
    const tcp = net.createServer((s) => {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      serveTcp(zone, s);
    });
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject);
      tcp.listen(0, host, () => resolve());
    });
    const port = (tcp.address() as net.AddressInfo).port;

    const udp = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
    udp.on('message', (msg, rinfo) => {
      const response = zone.answer(msg);
      if (response) udp.send(response, rinfo.port, rinfo.address);
    });
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind(port, host, () => resolve());
      });
      return { tcp, udp, port };
    } catch (err) {
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      if (attempt >= 5) throw err;
    }
  }
}

/** Starts the server on a free port of `host` (default 127.0.0.1). */
export async function startDnsServer(opts: {
  host?: string;
  zones: Record<string, DnsRecord[]>;
}): Promise<DnsServer> {
  const host = opts.host ?? '127.0.0.1';
  const zone = new Zone(opts.zones);
  const sockets = new Set<net.Socket>();
  const { tcp, udp, port } = await bindBoth(host, zone, sockets);

  return {
    port,
    address: host,
    queries: zone.queries,
    setRecords: (name, records) => zone.records.set(normalize(name), records),
    setMode: (name, mode) => zone.modes.set(name === '*' ? '*' : normalize(name), mode),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => tcp.close(() => resolve()));
      await new Promise<void>((resolve) => udp.close(() => resolve()));
    },
  };
}
