import { describe, expect, it } from 'vitest';
import { chooseProfile, detectDevices, parseDeviceMonitor } from './devices.js';

// Shaped like gst-device-monitor-1.0 output on a room box with a UVC camera and a USB speakerphone.
const ROOM_BOX = `Probing devices...


Device found:

	name  : HD Pro Webcam C920
	class : Video/Source
	caps  : video/x-raw, format=YUY2, width=1280, height=720, framerate=10/1
	        image/jpeg, width=1920, height=1080, framerate=30/1
	properties:
		udev-probed = true
		device.bus_path = pci-0000:00:14.0-usb-0:1:1.0
		api.v4l2.path = /dev/video0
		device.path = /dev/video0
	gst-launch-1.0 v4l2src device=/dev/video0 ! ...


Device found:

	name  : Jabra SPEAK 510 USB, USB Audio
	class : Audio/Source
	caps  : audio/x-raw, format=S16LE, layout=interleaved, rate=16000, channels=1
	properties:
		alsa.card = 1
		device.api = alsa
	gst-launch-1.0 alsasrc device="hw:1,0" ! ...


Device found:

	name  : Jabra SPEAK 510 USB, USB Audio
	class : Audio/Sink
	caps  : audio/x-raw, format=S16LE, layout=interleaved, rate=16000, channels=2
	properties:
		alsa.card = 1
	gst-launch-1.0 ... ! alsasink device="hw:1,0"
`;

describe('device detection', () => {
  it('parses devices, their class, properties and suggested element', () => {
    const devices = parseDeviceMonitor(ROOM_BOX);
    expect(devices.map((d) => [d.deviceClass, d.element, d.device])).toEqual([
      ['Video/Source', 'v4l2src', '/dev/video0'],
      ['Audio/Source', 'alsasrc', 'hw:1,0'],
      ['Audio/Sink', 'alsasink', 'hw:1,0'],
    ]);
    expect(devices[0]?.properties['api.v4l2.path']).toBe('/dev/video0');
  });

  it('chooses v4l2 + ALSA for a camera and speakerphone, test sources without a camera, and obeys the config', () => {
    const devices = parseDeviceMonitor(ROOM_BOX);
    const choice = chooseProfile(devices);
    expect(choice.settings).toMatchObject({
      profile: 'v4l2',
      cameraDevice: '/dev/video0',
      micDevice: 'hw:1,0',
      speakerDevice: 'hw:1,0',
    });
    expect(chooseProfile(devices.slice(1)).settings.profile).toBe('test');
    expect(chooseProfile(devices, { profile: 'headless' }).settings.profile).toBe('headless');
  });

  it('runs the real gst-device-monitor on this machine without failing (no camera here → test profile)', async () => {
    const devices = await detectDevices();
    expect(Array.isArray(devices)).toBe(true);
    const cams = devices.filter((d) => d.deviceClass === 'Video/Source' && d.element === 'v4l2src');
    expect(chooseProfile(devices).settings.profile).toBe(cams.length > 0 ? 'v4l2' : 'test');
  });
});
