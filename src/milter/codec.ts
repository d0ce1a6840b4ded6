// Milter packet framing: a 4-byte big-endian length (command byte plus data),
// one command byte, then the data. Both directions use the same framing.

/** sendmail's default MILTER_CHUNK_SIZE: the largest data part of one packet. */
export const MAX_DATA_SIZE = 65535;

export interface Packet {
  /** The command or reply letter, e.g. 'O', 'C', 'c', 'y'. */
  command: string;
  data: Buffer;
}

/** Encodes one packet; throws when the data is larger than MAX_DATA_SIZE. */
export function encodePacket(command: string, data: Buffer = Buffer.alloc(0)): Buffer {
  if (data.length > MAX_DATA_SIZE) {
    throw new RangeError(`milter packet data of ${data.length} bytes exceeds ${MAX_DATA_SIZE}`);
  }
  const header = Buffer.alloc(5);
  header.writeUInt32BE(data.length + 1, 0);
  header.write(command, 4, 'latin1');
  return Buffer.concat([header, data]);
}

/** Joins strings as NUL-terminated fields: "a\0b\0". */
export function nulFields(...fields: string[]): Buffer {
  return Buffer.from(fields.map((f) => f + '\0').join(''), 'latin1');
}

/** Splits data into its NUL-terminated fields; a trailing part without NUL is dropped. */
export function splitNulFields(data: Buffer): string[] {
  const fields: string[] = [];
  let start = 0;
  for (let i = 0; i < data.length; i++) {
    if (data[i] === 0) {
      fields.push(data.toString('latin1', start, i));
      start = i + 1;
    }
  }
  return fields;
}

export class PacketError extends Error {}

/**
 * Collects bytes from a stream into whole packets. A length of 0 or one whose
 * data part exceeds `maxDataSize` is a protocol error, because sendmail's
 * milter_read rejects both.
 */
export class PacketDecoder {
  private buffer: Buffer = Buffer.alloc(0);

  constructor(private readonly maxDataSize = MAX_DATA_SIZE) {}

  /** Adds bytes and returns the packets that are now complete. */
  push(chunk: Buffer): Packet[] {
    this.buffer = this.buffer.length === 0 ? chunk : Buffer.concat([this.buffer, chunk]);
    const packets: Packet[] = [];
    while (this.buffer.length >= 4) {
      const length = this.buffer.readUInt32BE(0);
      if (length === 0) throw new PacketError('milter packet with length 0');
      if (length - 1 > this.maxDataSize) {
        throw new PacketError(`milter packet length ${length} exceeds the maximum of ${this.maxDataSize + 1}`);
      }
      if (this.buffer.length < 4 + length) break;
      const command = String.fromCharCode(this.buffer[4]);
      const data = Buffer.from(this.buffer.subarray(5, 4 + length));
      this.buffer = this.buffer.subarray(4 + length);
      packets.push({ command, data });
    }
    return packets;
  }
}
