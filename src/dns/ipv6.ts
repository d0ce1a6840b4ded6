// IPv6 addresses in full: the eight groups behind "::" and an IPv4 tail, for
// the ip6.arpa name of a PTR lookup and the access map's IPv6 keys.

/** Returns the eight groups of an IPv6 address as written (hex, any case of leading zeros), "::" filled with "0". */
export function ipv6Groups(address: string): string[] {
  const halves = address.toLowerCase().split('::');
  // An IPv4 tail such as ::ffff:192.0.2.1 counts as two groups.
  const groupsOf = (part: string | undefined): string[] =>
    (part ? part.split(':') : []).flatMap((group) => {
      if (!group.includes('.')) return [group];
      const bytes = group.split('.').map(Number);
      return [((bytes[0] << 8) | bytes[1]).toString(16), ((bytes[2] << 8) | bytes[3]).toString(16)];
    });
  const head = groupsOf(halves[0]);
  const tail = groupsOf(halves[1]);
  const zeros = Array<string>(8 - head.length - tail.length).fill('0');
  return halves.length > 1 ? [...head, ...zeros, ...tail] : head;
}
