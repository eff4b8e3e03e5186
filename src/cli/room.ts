// `sealroom room …`: what the touch screen does, from a shell on the room box, through the daemon's
// local control API (loopback): start, join, leave, admit, deny, lock, status.
import type { Command } from 'commander';

const DEFAULT_CONTROL = process.env.SEALROOM_CONTROL_URL ?? 'http://127.0.0.1:7480';

interface StateLike {
  phase: string;
  device: { roomName?: string; deviceId?: string };
  relay: { connected: boolean; url?: string };
  meeting?: {
    meetingId: string;
    role: string;
    status: string;
    securityCode?: string;
    keyEpoch?: number;
    leader?: { roomName: string; org: string };
    roster: { participantId: string; roomName: string; org: string; isLeader: boolean; isSelf: boolean }[];
    waiting: { participantId: string; roomName: string; org: string }[];
    locked: boolean;
  };
  alerts: { level: string; message: string }[];
}

async function call(control: string, method: 'GET' | 'POST', path: string, body?: unknown): Promise<unknown> {
  let res: Response;
  try {
    res = await fetch(new URL(path, control), {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  } catch {
    throw new Error(
      `the daemon's control API at ${control} is not reachable (is \`sealroom daemon\` running?)`,
    );
  }
  const json = (await res.json().catch(() => ({}))) as { error?: string };
  if (!res.ok) throw new Error(json.error ?? `HTTP ${res.status}`);
  return json;
}

export function formatStatus(s: StateLike): string {
  const lines = [
    `room:     ${s.device.roomName ?? '?'} (${s.device.deviceId ?? 'not enrolled'})`,
    `relay:    ${s.relay.connected ? 'connected' : 'not connected'}${s.relay.url ? ` ${s.relay.url}` : ''}`,
  ];
  const m = s.meeting;
  if (!m || m.status === 'ended' || m.status === 'denied') {
    lines.push(`meeting:  none${m ? ` (last: ${m.meetingId} ${m.status})` : ''}`);
  } else {
    lines.push(`meeting:  ${m.meetingId} — ${m.status}, this room is ${m.role}${m.locked ? ', locked' : ''}`);
    if (m.leader) lines.push(`leader:   ${m.leader.roomName} (${m.leader.org})`);
    lines.push(
      `code:     ${m.securityCode ?? '(not yet certified)'}${m.keyEpoch !== undefined ? `   key epoch ${m.keyEpoch}` : ''}`,
    );
    for (const r of m.roster)
      lines.push(`  ${r.isLeader ? '★' : '•'} ${r.roomName} (${r.org})${r.isSelf ? ' — this room' : ''}`);
    for (const w of m.waiting) lines.push(`  waiting: ${w.roomName} (${w.org})  id ${w.participantId}`);
  }
  for (const a of s.alerts) lines.push(`${a.level}: ${a.message}`);
  return lines.join('\n');
}

export function registerRoomCommand(program: Command): void {
  const room = program
    .command('room')
    .description("control this room's meeting through the local daemon (as the touch screen does)")
    .option('--control <url>', "the daemon's local control API", DEFAULT_CONTROL);
  const control = () => (room.opts() as { control: string }).control;
  const print = (v: unknown) => console.log(typeof v === 'string' ? v : JSON.stringify(v));
  room
    .command('status')
    .description('meeting, security code, roster and waiting rooms')
    .option('--json', 'the daemon state as JSON')
    .action(async (opts: { json?: boolean }) => {
      const state = (await call(control(), 'GET', '/api/state')) as StateLike;
      print(opts.json ? state : formatStatus(state));
    });
  room
    .command('start')
    .description('start an E2EE meeting led by this room')
    .action(async () => {
      const r = (await call(control(), 'POST', '/api/meeting/start', {})) as { meetingId?: string };
      print(
        `meeting ${r.meetingId ?? '?'} started; others join with: sealroom room join ${r.meetingId ?? ''}`,
      );
    });
  room
    .command('join <meetingId>')
    .description('ask to join a meeting (the leader admits or denies)')
    .action(async (meetingId: string) => {
      await call(control(), 'POST', '/api/meeting/join', { meetingId });
      print(`asked to join ${meetingId}; waiting for the leader to admit this room`);
    });
  room
    .command('leave')
    .description('leave the meeting (a leading room ends it)')
    .action(async () => {
      await call(control(), 'POST', '/api/meeting/leave', {});
      print('left the meeting');
    });
  for (const verb of ['admit', 'deny'] as const) {
    room
      .command(`${verb} <participantId>`)
      .description(`${verb} a waiting room (leader only; ids from \`sealroom room status\`)`)
      .action(async (participantId: string) => {
        await call(control(), 'POST', `/api/meeting/${verb}`, { participantId });
        print(`${verb === 'admit' ? 'admitted' : 'denied'} ${participantId}`);
      });
  }
  room
    .command('lock <on|off>')
    .description('lock or unlock the meeting (leader only)')
    .action(async (value: string) => {
      await call(control(), 'POST', '/api/meeting/lock', { locked: value === 'on' });
      print(value === 'on' ? 'meeting locked' : 'meeting unlocked');
    });
}
