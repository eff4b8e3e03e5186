// Certificate serials as our APIs spell them. Pure (no node: imports) so the browser TrustStore uses it.

/** Normalises a hex serial: lowercase, no leading zero bytes (DER may add one for the sign bit). */
export function normalizeSerial(hex: string): string {
  return hex.toLowerCase().replace(/^(00)+(?=..)/, '');
}
