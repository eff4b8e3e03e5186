import { describe, expect, it } from 'vitest';
import { chooseProfile, detectDevices, hasHardwareEchoCancel, parseDeviceMonitor } from './devices.js';

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

  it('knows speakerphones that cancel their own echo, by the names ALSA, PulseAudio and the monitor give', () => {
    for (const name of [
      'Jabra SPEAK 510 USB, USB Audio',
      'Jabra Speak2 75',
      'alsa_output.usb-0b0e_Jabra_SPEAK_410_USB_745C4B6A0A3F021800-00.analog-stereo',
      'Poly Sync 20',
      'alsa_output.usb-Plantronics_Poly_Sync_40-M_1234-00.analog-stereo',
      'Plantronics Calisto 3200',
      'Anker PowerConf S3',
      'PowerConf S330',
      'EMEET OfficeCore M2',
      'eMeet Luna',
      'Yealink CP900',
      'Yealink_CP700',
      'Logitech P710e Speakerphone',
      'USB SPEAKERPHONE Analog Stereo',
    ]) {
      expect(hasHardwareEchoCancel(name), name).toBe(true);
    }
    for (const name of [
      'Built-in Audio Analog Stereo',
      'HDA Intel PCH, ALC3246 Analog',
      'Jabra Evolve2 65',
      'Poly Voyager Focus 2',
      'Plantronics Blackwire 3220 Series',
      'Yealink UH36',
      'HD Pro Webcam C920',
      'Speaker',
      '',
    ]) {
      expect(hasHardwareEchoCancel(name), name).toBe(false);
    }
  });

  it('turns software echo cancellation off for a speakerphone, leaves the profile default otherwise, obeys the config', () => {
    const devices = parseDeviceMonitor(ROOM_BOX);
    expect(devices.map((d) => d.hardwareEchoCancel)).toEqual([undefined, true, true]);
    const jabra = chooseProfile(devices);
    expect(jabra.settings.echoCancel).toBe(false);
    expect(jabra.reason).toMatch(/Jabra SPEAK 510 USB, USB Audio" cancels its own echo/);
    // The same box with a plain analog speaker: the v4l2 profile's default (on) stays.
    const plain = devices.map((d) =>
      d.deviceClass === 'Audio/Sink' ? { ...d, name: 'HDA Intel PCH, ALC3246 Analog' } : d,
    );
    const analog = chooseProfile(plain);
    expect(analog.settings.profile).toBe('v4l2');
    expect('echoCancel' in analog.settings).toBe(false);
    expect(analog.reason).toMatch(/software echo cancellation on/);
    // Configured either way: the configuration wins over detection.
    expect(chooseProfile(devices, { echoCancel: true }).settings.echoCancel).toBe(true);
    expect(chooseProfile(plain, { echoCancel: false }).settings.echoCancel).toBe(false);
  });
});
