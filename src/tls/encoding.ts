// sendmail's encoding of certificate-derived macros (${cert_subject},
// ${cert_issuer}, ${cn_subject}, ${cn_issuer}): every non-printable byte and
// each of < > ( ) " + \ and space becomes "+" and two upper-case hex digits.
// Access map keys such as CertIssuer: and CS: are written in this form.

const SPECIAL = new Set(['<', '>', '(', ')', '"', '+', ' ', '\\']);

/** Encodes a DN or CN as sendmail stores it in a macro, e.g. "CN=Darth Mail" to "CN=Darth+20Mail". */
export function encodeMacroValue(value: string): string {
  let out = '';
  for (const byte of Buffer.from(value, 'utf8')) {
    const c = String.fromCharCode(byte);
    if (byte < 0x21 || byte > 0x7e || SPECIAL.has(c)) {
      out += '+' + byte.toString(16).toUpperCase().padStart(2, '0');
    } else {
      out += c;
    }
  }
  return out;
}
