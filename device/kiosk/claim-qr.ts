// The QR code IT scans to claim this device: an SVG drawn server-side (npm `qrcode`), light modules on
// dark so it sits in the dark theme yet keeps the quiet zone scanners need.
import QRCode from 'qrcode';

// Keyed by URL; cleared on each new URL.
const cache = new Map<string, Promise<string>>();

export function claimQrSvg(claimUrl: string): Promise<string> {
  let svg = cache.get(claimUrl);
  if (!svg) {
    svg = QRCode.toString(claimUrl, {
      type: 'svg',
      errorCorrectionLevel: 'M',
      margin: 4,
      // Dark modules on white: phone scanners expect it, whatever the surrounding theme.
      color: { dark: '#000000ff', light: '#ffffffff' },
    });
    // One device shows one claim URL at a time; keep the cache from growing across re-enrollments.
    cache.clear();
    cache.set(claimUrl, svg);
  }
  return svg;
}
