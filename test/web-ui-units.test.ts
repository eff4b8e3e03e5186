// The web participant page's pure parts (src/web/app/): the join link, the SFU offer as labels for
// tiles (attacker input: the relay writes it), refusal wording, formatting.
import { describe, expect, it } from 'vitest';
import { codeRows, expiryText, participantLine, securityCodeGroups } from '../src/web/app/format.js';
import { checkRelayUrl, joinFragment, parseJoinFragment } from '../src/web/app/fragment.js';
import { certificateRefusal, idpRefusal } from '../src/web/app/refusals.js';
import { parseOffer, publishLines, subscriptions } from '../src/web/app/sdp.js';

const section = (kind: string, mid: string, dir: string, msid?: string, codec = 'VP8') =>
  [
    `m=${kind} 9 UDP/TLS/RTP/SAVPF ${kind === 'audio' ? 111 : 96}`,
    'c=IN IP4 0.0.0.0',
    `a=mid:${mid}`,
    `a=${dir}`,
    kind === 'audio' ? 'a=rtpmap:111 opus/48000/2' : `a=rtpmap:96 ${codec}/90000`,
    ...(msid ? [`a=msid:${msid}`] : []),
  ].join('\r\n');

const offer = (...sections: string[]) =>
  ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0 1 2', ...sections].join('\r\n') +
  '\r\n';

describe('join link fragment', () => {
  it('reads meeting and relay', () => {
    expect(parseJoinFragment('#meeting=abcd-1234&relay=ws%3A%2F%2F127.0.0.1%3A7443%2Fv1%2Fws')).toEqual({
      ok: true,
      target: { meetingId: 'abcd-1234', relayUrl: 'ws://127.0.0.1:7443/v1/ws' },
    });
    const t = { meetingId: 'room-42', relayUrl: 'wss://relay.example.org/v1/ws' };
    const back = parseJoinFragment(joinFragment(t));
    expect(back).toEqual({ ok: true, target: t });
    expect(parseJoinFragment('')).toEqual({ ok: 'none' });
  });

  it('refuses crafted links', () => {
    for (const bad of [
      '#meeting=ABCD&relay=ws://r/v1/ws', // upper case
      '#meeting=a b c d&relay=ws://r/v1/ws',
      '#meeting=abc&relay=ws://r/v1/ws', // too short
      `#meeting=${'a'.repeat(33)}&relay=ws://r/v1/ws`,
      '#meeting=abcd&relay=javascript:alert(1)',
      '#meeting=abcd&relay=https://relay.example.org/',
      '#meeting=abcd&relay=ws://user:pw@relay.example.org/',
      '#meeting=abcd',
    ]) {
      expect(parseJoinFragment(bad).ok, bad).toBe(false);
    }
    expect(checkRelayUrl('wss://relay.example.org/v1/ws#x')).toBeUndefined();
    expect(checkRelayUrl('not a url')).toBeUndefined();
  });
});

describe('SFU offer labels (hostile relay)', () => {
  const sdp = offer(
    section('audio', '0', 'recvonly'),
    section('video', '1', 'recvonly'),
    section('video', '2', 'recvonly'),
    section('audio', '3', 'sendonly', 'room-a audio'),
    section('video', '4', 'sendonly', 'room-a video'),
    section('video', '5', 'sendonly', 'person-b content'),
  );

  it('finds the publish lines in the order docs/relay.md fixes, and the subscriptions by msid', () => {
    const sections = parseOffer(sdp);
    expect(sections.map((s) => s.mid)).toEqual(['0', '1', '2', '3', '4', '5']);
    expect(sections[1]?.codec).toBe('vp8');
    expect(publishLines(sections)).toEqual({ microphone: '0', camera: '1', content: '2' });
    expect([...subscriptions(sections)]).toEqual([
      ['3', { publisher: 'room-a', label: 'audio' }],
      ['4', { publisher: 'room-a', label: 'video' }],
      ['5', { publisher: 'person-b', label: 'content' }],
    ]);
    expect(parseOffer(offer(section('video', '1', 'recvonly', undefined, 'H264')))[0]?.codec).toBe('h264');
  });

  it('ignores malformed or lying msid lines', () => {
    const lies = offer(
      section('audio', '0', 'recvonly'),
      section('video', '1', 'recvonly'),
      section('audio', '3', 'sendonly', 'room-a video'), // video label on an audio line
      section('video', '4', 'sendonly', 'room-a audio'), // audio label on a video line
      section('video', '5', 'sendonly', '<img src=x> video'), // not an id
      section('video', '6', 'sendonly', `${'x'.repeat(65)} video`), // too long
      section('video', '7', 'sendonly', 'room-a screen'), // unknown label
      section('video', '8', 'recvonly', 'room-a video'), // not sent to us
      section('video', '9', 'sendonly'), // no msid
    );
    expect(subscriptions(parseOffer(lies)).size).toBe(0);
  });

  it('bounds a huge offer', () => {
    const many = offer(
      ...Array.from({ length: 2000 }, (_, i) => section('video', String(i), 'sendonly', `p${i} video`)),
    );
    const sections = parseOffer(many);
    expect(sections.length).toBe(512);
    expect(subscriptions(sections).size).toBe(512);
  });
});

describe('refusal wording', () => {
  it('has a sentence for every certificate refusal code of the SPEC', () => {
    for (const code of [
      'wrong-issuer',
      'token-expired',
      'token-invalid',
      'token-replayed',
      'nonce-mismatch',
      'bad-proof',
      'email-not-verified',
      'email-domain',
      'sign-in-required',
    ]) {
      const text = certificateRefusal(code, 401);
      expect(text, code).not.toMatch(/refused the sign-in/);
      expect(text.length).toBeGreaterThan(30);
    }
    expect(certificateRefusal('token-replayed', 401)).toMatch(/already used/);
    expect(certificateRefusal(undefined, 500)).toMatch(/failed/);
    expect(certificateRefusal('something-new', 400, 'odd')).toBe(
      'The certificate service refused the sign-in: odd',
    );
    expect(idpRefusal('access_denied')).toMatch(/cancelled or refused/);
    expect(idpRefusal('weird_error', 'why')).toBe(
      'The identity provider refused the sign-in (weird_error). (why)',
    );
  });
});

describe('formatting', () => {
  it('groups the code as the rooms do and labels people and rooms', () => {
    const groups = securityCodeGroups('57056 67967 65014 89928 88357 83584 20101 24099');
    expect(codeRows(groups)).toEqual([
      ['57056', '67967', '65014', '89928'],
      ['88357', '83584', '20101', '24099'],
    ]);
    expect(
      participantLine({
        kind: 'person',
        name: 'Alice Smith',
        email: 'alice@example.org',
        org: 'Example Corp',
      }),
    ).toBe('Alice Smith · alice@example.org · Example Corp · signed in');
    expect(participantLine({ kind: 'room', name: 'Huddle 2', email: '', org: 'Example Corp' })).toBe(
      'Huddle 2 · Example Corp',
    );
    const now = new Date(2026, 0, 1, 9, 0);
    expect(expiryText(new Date(2026, 0, 1, 21, 0), now)).toBe('until 21:00 (in 12 h 0 min)');
    expect(expiryText(new Date(2026, 0, 1, 9, 30), now)).toBe('until 09:30 (in 30 min)');
    expect(expiryText(new Date(2026, 0, 1, 8, 0), now)).toBe('expired at 08:00');
  });
});
