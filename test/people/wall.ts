// A room's kiosk page for the people tests: test/wall-page.ts's stand-in page (its own Chromium)
// answering the room daemon's wall offer through the control server's token-guarded routes, and a
// look-up of what the tile of a given kind and sender shows (slot map from the room's state).
import type { StackRoom } from './stack.js';
import { launchWallBrowser, type TileReport, type WallBrowser, WallPage } from '../wall-page.js';

export interface RoomWall {
  page: WallPage;
  /** The tile of `kind` carrying `senderIndex` (any sender if undefined), or undefined. */
  tile(kind: 'remote' | 'self' | 'content', senderIndex?: number): Promise<TileReport | undefined>;
  close(): Promise<void>;
}

export async function openWall(room: StackRoom): Promise<RoomWall> {
  const { daemon } = room;
  const post = (path: string, body: unknown) =>
    fetch(daemon.controlUrl.replace(/\/$/, '') + path, {
      method: 'POST',
      headers: { authorization: `Bearer ${daemon.kioskToken}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
  const res = await post('/api/wall/sessions', {});
  if (res.status !== 201) throw new Error(`${room.name}: wall session refused (${res.status})`);
  const { sessionId, sdp } = (await res.json()) as { sessionId: string; sdp: string };
  let browser: WallBrowser | undefined = await launchWallBrowser();
  try {
    const page = await WallPage.open(browser);
    const answer = await page.answer(sdp);
    const ok = await post(`/api/wall/sessions/${sessionId}/answer`, { sdp: answer });
    if (ok.status !== 200) throw new Error(`${room.name}: wall answer refused (${ok.status})`);
    const b = browser;
    browser = undefined;
    return {
      page,
      async tile(kind, senderIndex) {
        const slots = daemon.state.get().media.wall?.slots ?? [];
        const slot = slots.find(
          (s) => s.kind === kind && (senderIndex === undefined || s.senderIndex === senderIndex),
        );
        if (!slot) return undefined;
        return (await page.report()).get(slot.mid);
      },
      async close() {
        await page.close();
        await b.close();
      },
    };
  } finally {
    await browser?.close();
  }
}
