// Where everything goes on the meeting screen while video plays (pure: no DOM). Input: the viewport in
// CSS pixels and what there is to show; output: rectangles in viewport pixels that the view turns into
// vw/vh, so the same picture holds at 1280×720, 1920×1080 and 3840×2160.
//
//   ┌ top bar (room name, clock) ──────────────────────────────┐
//   │ stage: far rooms' tiles, content, self-view │ side panel  │
//   │                                             │ badges,     │
//   │                                             │ roster, …   │
//   ├ security code: a one-row band, or full size (two rows) ──┤
//   └ controls ────────────────────────────────────────────────┘
//
// Stage layouts: 1 remote → one large tile, self-view picture-in-picture in its bottom-right corner
// (the label is bottom left); 2 remote →
// the active speaker large, the other small beside it with the self-view under it (nothing covers a
// far room); 3–4 → 2×2 gallery; 5–9 → 3×3 gallery (cells sized for 3×3 so tiles keep their size as
// rooms join), self-view in the stage's top-right corner (over a picture, never over a label); content → content large, the people (and the self-view) in a strip under it. Every tile
// is 16:9; the page letterboxes other shapes inside it (object-fit: contain).

export type CodeMode = 'full' | 'band';
export type StageKind = 'speaker' | 'gallery' | 'content';

export interface Rect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface LayoutInput {
  /** Viewport size in CSS pixels. */
  width: number;
  height: number;
  /** Far rooms with a video slot, 0..9 (more are clamped to 9: the worker sends at most 9). */
  remoteCount: number;
  /** Index (among the remote tiles, in slot order) of the active speaker, if known. */
  activeIndex?: number;
  /** A shared screen (content slot with a sender). */
  content: boolean;
  /** This room's camera picture. */
  selfView: boolean;
  codeMode: CodeMode;
  /** The leader changed: the full-size code carries the "compare it" prompt with its button. */
  recheck?: boolean;
}

export interface TileBox extends Rect {
  /** Index of the remote tile (slot order) this box shows. */
  index: number;
  /** The active speaker's tile (highlighted by the view). */
  active: boolean;
  /** Large enough for the organisation next to the room name in its label. */
  roomy: boolean;
  /** Label type size in px. */
  labelFont: number;
}

export interface MeetingLayout {
  kind: StageKind;
  /** The root font size (the CSS rem: min(2.4vh, 1.35vw)) and the standard gap, in px. */
  rem: number;
  gap: number;
  topBar: Rect;
  stage: Rect;
  side: Rect;
  code: Rect;
  controls: Rect;
  codeMode: CodeMode;
  /** Security-code digit type size in px (full: min(9vh, 5.2vw) as without video; band: min(4.8vh, 2.7vw)). */
  codeFont: number;
  tiles: TileBox[];
  content?: Rect & { labelFont: number };
  self?: Rect & { labelFont: number };
}

export const ASPECT = 16 / 9;
/** DejaVu Sans Mono's figures are ~0.73 em tall: 9vh type → ~6.6vh ink (≥ 6 %), 4.8vh → ~3.5vh. */
export const FULL_CODE_FONT = { vh: 0.09, vw: 0.052 };
export const BAND_CODE_FONT = { vh: 0.048, vw: 0.027 };
/** The side panel's share of the width. */
export const SIDE_SHARE = 0.24;

export function remOf(width: number, height: number): number {
  return Math.min(0.024 * height, 0.0135 * width);
}

export function gapOf(width: number, height: number): number {
  return Math.min(0.016 * height, 0.009 * width);
}

/** The largest 16:9 box inside w×h. */
export function fitBox(w: number, h: number): { w: number; h: number } {
  const width = Math.max(0, Math.min(w, h * ASPECT));
  return { w: width, h: width / ASPECT };
}

/** Height of the code region: a band (one row, label beside it) or the full two-row panel. */
export function codeHeight(mode: CodeMode, width: number, height: number, recheck = false): number {
  const rem = remOf(width, height);
  if (mode === 'band') {
    const font = Math.min(BAND_CODE_FONT.vh * height, BAND_CODE_FONT.vw * width);
    // Digits' line box (1.2 em) or the two-line label beside them, plus padding and the 2 px border.
    return Math.max(1.2 * font, 2 * 1.25 * 0.9 * rem) + 0.6 * rem + 4;
  }
  const font = Math.min(FULL_CODE_FONT.vh * height, FULL_CODE_FONT.vw * width);
  // Padding (0.6 + 0.8 rem), the label line (1 rem type, 1.25 line, 0.4 rem under it), two code rows,
  // a little slack for the focus ring and the border.
  // The leader-change prompt replaces the label: up to two lines beside a 3 rem button, 0.4 rem under it.
  const label = recheck ? 3.4 * rem : 1.25 * rem + 0.4 * rem;
  return 0.6 * rem + label + 2 * 1.2 * font + 0.8 * rem + 0.4 * rem + 4;
}

function labelFontFor(tileH: number, rem: number): number {
  return Math.max(0.7 * rem, Math.min(1.1 * rem, tileH * 0.09));
}

export function meetingLayout(input: LayoutInput): MeetingLayout {
  const W = input.width;
  const H = input.height;
  const rem = remOf(W, H);
  const gap = gapOf(W, H);
  const pad = 2 * gap;
  const topBar: Rect = { x: 0, y: 0, w: W, h: 3.4 * rem };
  const controlsH = 3 * rem;
  const controls: Rect = { x: pad, y: H - gap - controlsH, w: W - 2 * pad, h: controlsH };
  const codeH = codeHeight(input.codeMode, W, H, input.recheck === true);
  const code: Rect = { x: pad, y: controls.y - gap - codeH, w: W - 2 * pad, h: codeH };
  const top = topBar.h + gap;
  const bottom = code.y - gap;
  const sideW = SIDE_SHARE * W;
  const side: Rect = { x: W - pad - sideW, y: top, w: sideW, h: bottom - top };
  const stage: Rect = { x: pad, y: top, w: side.x - gap - pad, h: bottom - top };
  const codeFont =
    input.codeMode === 'full'
      ? Math.min(FULL_CODE_FONT.vh * H, FULL_CODE_FONT.vw * W)
      : Math.min(BAND_CODE_FONT.vh * H, BAND_CODE_FONT.vw * W);

  const n = Math.max(0, Math.min(9, Math.floor(input.remoteCount)));
  const active =
    input.activeIndex !== undefined && input.activeIndex >= 0 && input.activeIndex < n
      ? input.activeIndex
      : undefined;
  const base = { topBar, stage, side, code, controls, rem, gap, codeMode: input.codeMode, codeFont };
  const box = (index: number, r: Rect): TileBox => ({
    ...r,
    index,
    active: index === active,
    roomy: r.h >= 6 * rem,
    labelFont: labelFontFor(r.h, rem),
  });
  const withFont = (r: Rect) => ({ ...r, labelFont: labelFontFor(r.h, rem) });

  if (input.content) {
    const { content, strip } = contentLayout(stage, gap, n + (input.selfView ? 1 : 0));
    const tiles = strip.slice(0, n).map((r, i) => box(i, r));
    const selfRect = input.selfView ? strip[n] : undefined;
    return {
      ...base,
      kind: 'content',
      tiles,
      content: withFont(content),
      ...(selfRect ? { self: withFont(selfRect) } : {}),
    };
  }
  if (n <= 2) {
    const { tiles, self } = speakerLayout(stage, gap, n, active ?? 0, input.selfView);
    return {
      ...base,
      kind: 'speaker',
      tiles: tiles.map((r, i) => box(i, r)),
      ...(self ? { self: withFont(self) } : {}),
    };
  }
  const cols = n <= 4 ? 2 : 3;
  const tiles = gridLayout(stage, gap, n, cols);
  return {
    ...base,
    kind: 'gallery',
    tiles: tiles.map((r, i) => box(i, r)),
    // Top right: over a corner of the top-right tile's picture, never over a label (bottom left).
    ...(input.selfView ? { self: withFont(pip(stage, gap, 'top')) } : {}),
  };
}

/** A small self-view in the right-hand corner of `area` (over the stage). */
function pip(area: Rect, gap: number, corner: 'top' | 'bottom' = 'bottom'): Rect {
  const size = fitBox(area.w * 0.2, area.h * 0.24);
  const y = corner === 'top' ? area.y : area.y + area.h - gap - size.h;
  return { x: area.x + area.w - size.w - (corner === 'top' ? 0 : gap), y, ...size };
}

/** 1 remote: one large tile; 2: the active speaker large, the other beside it, the self-view under that. */
function speakerLayout(
  stage: Rect,
  gap: number,
  n: number,
  active: number,
  selfView: boolean,
): { tiles: Rect[]; self?: Rect } {
  if (n === 0) {
    return selfView ? { tiles: [], self: centred(stage, fitBox(stage.w, stage.h)) } : { tiles: [] };
  }
  if (n === 1) {
    const main = centred(stage, fitBox(stage.w, stage.h));
    return selfView ? { tiles: [main], self: pip(main, gap) } : { tiles: [main] };
  }
  // Side column wide enough to leave the main tile its full height where the stage is wide, and at
  // least 22 % of the stage so the other room stays recognisable; at most a third.
  const column = Math.min(stage.w / 3, Math.max(stage.w * 0.22, stage.w - gap - stage.h * ASPECT));
  const small = fitBox(column, (stage.h - gap) / 2);
  const main = fitBox(stage.w - gap - small.w, stage.h);
  const total = main.w + gap + small.w;
  const x0 = stage.x + (stage.w - total) / 2;
  const y0 = stage.y + (stage.h - main.h) / 2;
  const mainRect: Rect = { x: x0, y: y0, ...main };
  const otherRect: Rect = { x: x0 + main.w + gap, y: y0, ...small };
  const selfRect: Rect = { x: otherRect.x, y: y0 + main.h - small.h, ...small };
  const tiles: Rect[] = [];
  tiles[active] = mainRect;
  tiles[1 - active] = otherRect;
  return selfView ? { tiles, self: selfRect } : { tiles };
}

/** `n` tiles on a grid of `cols`×`cols` cells; only the rows in use, centred; a short last row centred. */
function gridLayout(stage: Rect, gap: number, n: number, cols: number): Rect[] {
  const cell = fitBox((stage.w - (cols - 1) * gap) / cols, (stage.h - (cols - 1) * gap) / cols);
  const rows = Math.ceil(n / cols);
  const blockH = rows * cell.h + (rows - 1) * gap;
  const y0 = stage.y + (stage.h - blockH) / 2;
  const out: Rect[] = [];
  for (let i = 0; i < n; i++) {
    const row = Math.floor(i / cols);
    const inRow = Math.min(cols, n - row * cols);
    const rowW = inRow * cell.w + (inRow - 1) * gap;
    const x0 = stage.x + (stage.w - rowW) / 2;
    out.push({ x: x0 + (i % cols) * (cell.w + gap), y: y0 + row * (cell.h + gap), ...cell });
  }
  return out;
}

/** Content on top, as large as it fits; `count` people tiles in one centred row under it. */
function contentLayout(stage: Rect, gap: number, count: number): { content: Rect; strip: Rect[] } {
  if (count === 0) return { content: centred(stage, fitBox(stage.w, stage.h)), strip: [] };
  const tile = fitBox((stage.w - (count - 1) * gap) / count, stage.h * 0.2);
  const content = fitBox(stage.w, stage.h - gap - tile.h);
  const blockH = content.h + gap + tile.h;
  const y0 = stage.y + (stage.h - blockH) / 2;
  const stripW = count * tile.w + (count - 1) * gap;
  const sx = stage.x + (stage.w - stripW) / 2;
  return {
    content: { x: stage.x + (stage.w - content.w) / 2, y: y0, ...content },
    strip: Array.from({ length: count }, (_, i) => ({
      x: sx + i * (tile.w + gap),
      y: y0 + content.h + gap,
      ...tile,
    })),
  };
}

function centred(area: Rect, size: { w: number; h: number }): Rect {
  return { x: area.x + (area.w - size.w) / 2, y: area.y + (area.h - size.h) / 2, ...size };
}

/** CSS box of a rectangle in viewport units, relative to `origin` (the positioned parent). */
export function rectCss(
  r: Rect,
  width: number,
  height: number,
  origin?: Rect,
): { left: string; top: string; width: string; height: string } {
  const ox = origin?.x ?? 0;
  const oy = origin?.y ?? 0;
  const vw = (v: number) => `${((v / width) * 100).toFixed(4)}vw`;
  const vh = (v: number) => `${((v / height) * 100).toFixed(4)}vh`;
  return { left: vw(r.x - ox), top: vh(r.y - oy), width: vw(r.w), height: vh(r.h) };
}

/** True when two rectangles share area (touching edges do not count). */
export function overlaps(a: Rect, b: Rect, tolerance = 0.01): boolean {
  return (
    a.x + a.w > b.x + tolerance &&
    b.x + b.w > a.x + tolerance &&
    a.y + a.h > b.y + tolerance &&
    b.y + b.h > a.y + tolerance
  );
}

export function inside(inner: Rect, outer: Rect, tolerance = 0.01): boolean {
  return (
    inner.x >= outer.x - tolerance &&
    inner.y >= outer.y - tolerance &&
    inner.x + inner.w <= outer.x + outer.w + tolerance &&
    inner.y + inner.h <= outer.y + outer.h + tolerance
  );
}
