// How a device's identity is written into X.509 names. Chosen so `openssl x509 -noout -subject`
// reads naturally and the relay can read it back without guessing:
//   CN (commonName, 2.5.4.3)            device id
//   O  (organizationName, 2.5.4.10)     organisation
//   OU (organizationalUnitName, 2.5.4.11) room name
//   L  (localityName, 2.5.4.7)          site
// Values are passed as explicit UTF8String objects: @peculiar/x509 rewrites plain strings (quotes,
// backslashes, a leading '#'), and a DN string would let commas or '=' in a room name inject
// attributes. This way any Unicode text comes back byte for byte.
import { x509 } from './provider.js';

export interface DeviceSubject {
  deviceId: string;
  org: string;
  roomName: string;
  site: string;
}

export function deviceSubjectName(s: DeviceSubject): x509.Name {
  return new x509.Name([
    { CN: [utf8(s.deviceId)] },
    { O: [utf8(s.org)] },
    { OU: [utf8(s.roomName)] },
    { L: [utf8(s.site)] },
  ]);
}

export function caSubjectName(commonName: string, org: string): x509.Name {
  return new x509.Name([{ CN: [utf8(commonName)] }, { O: [utf8(org)] }]);
}

export function utf8(value: string): x509.JsonAttributeObject {
  return { utf8String: value };
}

/** Reads the single value of an attribute, or undefined when absent or repeated. */
export function singleField(name: x509.Name, field: 'CN' | 'O' | 'OU' | 'L'): string | undefined {
  const values = name.getField(field);
  return values.length === 1 ? values[0] : undefined;
}

/** Stable URI put in the subjectAltName so other tools can match the device id too. */
export function deviceUri(deviceId: string): string {
  return `urn:sealroom:device:${encodeURIComponent(deviceId)}`;
}
