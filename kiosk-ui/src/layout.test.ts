import { describe, expect, it } from 'vitest';
import {
  ASPECT,
  codeHeight,
  inside,
  type LayoutInput,
  type MeetingLayout,
  meetingLayout,
  overlaps,
  type Rect,
  rectCss,
} from './layout.js';

const SIZES = [
  [1280, 720],
  [1920, 1080],
  [3840, 2160],
  [1024, 768],
  [2560, 1080],
] as const;

function layout(partial: Partial<LayoutInput> & { width: number; height: number }): MeetingLayout {
  return meetingLayout({ remoteCount: 0, content: false, selfView: true, codeMode: 'band', ...partial });
}

function allTiles(l: MeetingLayout): Rect[] {
  return [...l.tiles, ...(l.content ? [l.content] : [])];
}

const viewport = (w: number, h: number): Rect => ({ x: 0, y: 0, w, h });

describe('meeting layout', () => {
  for (const [width, height] of SIZES) {
    for (const remoteCount of [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]) {
      for (const content of [false, true]) {
        for (const codeMode of ['band', 'full'] as const) {
          for (const selfView of [true, false]) {
            const name = `${width}×${height}, ${remoteCount} remote${content ? ' + content' : ''}, ${codeMode}, self ${selfView}`;
            it(name, () => {
              const l = layout({
                width,
                height,
                remoteCount,
                content,
                codeMode,
                selfView,
                activeIndex: remoteCount - 1,
              });
              expect(l.tiles).toHaveLength(remoteCount);
              expect(Boolean(l.self)).toBe(selfView);
              expect(Boolean(l.content)).toBe(content);
              // Regions sit inside the viewport and do not overlap each other.
              const regions = [l.topBar, l.stage, l.side, l.code, l.controls];
              for (const r of regions)
                expect(inside(r, viewport(width, height)), JSON.stringify(r)).toBe(true);
              for (let i = 0; i < regions.length; i++)
                for (let j = i + 1; j < regions.length; j++)
                  expect(overlaps(regions[i]!, regions[j]!), `${i} / ${j}`).toBe(false);
              // Tiles: 16:9, inside the stage, never over each other; the self-view too, except in
              // the picture-in-picture layouts, where it lies over the stage only.
              const tiles = allTiles(l);
              for (const t of [...tiles, ...(l.self ? [l.self] : [])]) {
                expect(t.w / t.h).toBeCloseTo(ASPECT, 6);
                expect(inside(t, l.stage), JSON.stringify(t)).toBe(true);
                expect(t.w).toBeGreaterThan(0);
              }
              for (let i = 0; i < tiles.length; i++)
                for (let j = i + 1; j < tiles.length; j++)
                  expect(overlaps(tiles[i]!, tiles[j]!), `tiles ${i} / ${j}`).toBe(false);
              const pip = l.kind === 'gallery' || (l.kind === 'speaker' && remoteCount === 1);
              if (l.self && !pip) for (const t of tiles) expect(overlaps(l.self, t)).toBe(false);
              if (l.self && pip) expect(l.self.w).toBeLessThanOrEqual(l.stage.w * 0.21);
              // Exactly one highlighted tile when a speaker is known.
              expect(l.tiles.filter((t) => t.active)).toHaveLength(remoteCount > 0 ? 1 : 0);
              expect(l.tiles.map((t) => t.index)).toEqual([...Array(remoteCount).keys()]);
            });
          }
        }
      }
    }
  }

  it('chooses speaker view for 1–2, a 2×2 gallery for 3–4, a 3×3 gallery for 5–9, content when shared', () => {
    const at = (remoteCount: number, content = false) =>
      layout({ width: 1920, height: 1080, remoteCount, content });
    expect([1, 2, 3, 4, 5, 9].map((n) => at(n).kind)).toEqual([
      'speaker',
      'speaker',
      'gallery',
      'gallery',
      'gallery',
      'gallery',
    ]);
    expect(at(4, true).kind).toBe('content');
    const columns = (l: MeetingLayout) => new Set(l.tiles.map((t) => Math.round(t.x))).size;
    const rows = (l: MeetingLayout) => new Set(l.tiles.map((t) => Math.round(t.y))).size;
    expect([columns(at(4)), rows(at(4))]).toEqual([2, 2]);
    expect([columns(at(9)), rows(at(9))]).toEqual([3, 3]);
    // 3×3 cells from 5 rooms on: tiles keep their size while rooms join.
    expect(at(5).tiles[0]!.w).toBeCloseTo(at(9).tiles[0]!.w, 6);
    // Content is the largest thing on the stage; the people are in one row under it.
    const c = at(4, true);
    expect(c.content!.w).toBeGreaterThan(3 * c.tiles[0]!.w);
    expect(new Set(c.tiles.map((t) => Math.round(t.y))).size).toBe(1);
    expect(c.tiles[0]!.y).toBeGreaterThan(c.content!.y + c.content!.h);
  });

  it('shows the active speaker large with two remote rooms, and follows it', () => {
    const first = layout({ width: 1920, height: 1080, remoteCount: 2, activeIndex: 0 });
    const second = layout({ width: 1920, height: 1080, remoteCount: 2, activeIndex: 1 });
    expect(first.tiles[0]!.w).toBeGreaterThan(2 * first.tiles[1]!.w);
    expect(second.tiles[1]!.w).toBeGreaterThan(2 * second.tiles[0]!.w);
    expect(second.tiles[1]).toMatchObject({ active: true });
    // No speaker known yet: the first room is large, nobody is highlighted.
    const unknown = layout({ width: 1920, height: 1080, remoteCount: 2 });
    expect(unknown.tiles[0]!.w).toBeGreaterThan(unknown.tiles[1]!.w);
    expect(unknown.tiles.some((t) => t.active)).toBe(false);
    // An index the layout does not have (stale or hostile) highlights nothing.
    expect(
      layout({ width: 1920, height: 1080, remoteCount: 2, activeIndex: 7 }).tiles.some((t) => t.active),
    ).toBe(false);
  });

  it('gives the full-size code ≥ 6 % ink and the band a readable size, with room left for video', () => {
    for (const [width, height] of SIZES) {
      const full = layout({ width, height, remoteCount: 1, codeMode: 'full' });
      const band = layout({ width, height, remoteCount: 1, codeMode: 'band' });
      // Figures are ~0.73 em tall in DejaVu Sans Mono.
      if (width / height >= 16 / 9 - 0.01) {
        expect((full.codeFont * 0.73) / height).toBeGreaterThanOrEqual(0.06);
        expect((band.codeFont * 0.73) / height).toBeGreaterThanOrEqual(0.034);
        // One far room fills most of the height (16:9 screens; 4:3 ones are width-bound).
        expect(band.tiles[0]!.h / height).toBeGreaterThan(0.6);
      }
      // 40 digits on one row (27.6 em with the group gaps) fit the band beside its label.
      expect(27.6 * band.codeFont + 8 * band.rem).toBeLessThanOrEqual(band.code.w);
      // Two rows of 20 (13.7 em) fit the full panel.
      expect(13.7 * full.codeFont).toBeLessThanOrEqual(full.code.w);
      expect(full.code.h).toBeCloseTo(codeHeight('full', width, height), 6);
      expect(band.stage.h).toBeGreaterThan(full.stage.h);
      expect(full.stage.h / height).toBeGreaterThan(0.4);
    }
  });

  it('writes rectangles in viewport units', () => {
    expect(rectCss({ x: 192, y: 108, w: 960, h: 540 }, 1920, 1080)).toEqual({
      left: '10.0000vw',
      top: '10.0000vh',
      width: '50.0000vw',
      height: '50.0000vh',
    });
    expect(rectCss({ x: 192, y: 108, w: 96, h: 54 }, 1920, 1080, { x: 96, y: 54, w: 0, h: 0 })).toEqual({
      left: '5.0000vw',
      top: '5.0000vh',
      width: '5.0000vw',
      height: '5.0000vh',
    });
  });
});
