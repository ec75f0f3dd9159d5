import { SplitPanel, Widget } from '@lumino/widgets';

/** The panel's width in a wide window: a diff line of a cell and a readable figure fit. */
export const DEFAULT_WIDTH = 420;
/** Below this the panel's lines and buttons no longer fit (style: .jp-VisCoder min-width). */
export const MIN_WIDTH = 280;
/** The panel's share of the window when it opens in a narrow one. */
const WINDOW_SHARE = 0.35;
/** The main (notebook) area keeps at least this share of the row, and at least MAIN_MIN px. */
const MAIN_SHARE = 0.45;
const MAIN_MIN = 400;

/** The width the panel opens at in a window `windowWidth` px wide: 420 px, less in a narrow window. */
export function openingWidth(windowWidth: number): number {
  return Math.round(Math.min(DEFAULT_WIDTH, Math.max(MIN_WIDTH, WINDOW_SHARE * windowWidth)));
}

/**
 * The pixel widths of a row of areas after giving area `ours` the width `wanted`, the difference
 * taken from (or given to) area `main`, which keeps max(MAIN_SHARE of the row, MAIN_MIN px) unless
 * that would leave `ours` below MIN_WIDTH; with `chosen` (the user dragged to `wanted`), `ours` gets
 * it as long as main keeps MIN_WIDTH. Null when nothing changes by more than a pixel.
 */
export function resizedWidths(
  widths: number[],
  ours: number,
  main: number,
  wanted: number,
  chosen = false
): number[] | null {
  const total = widths.reduce((a, b) => a + b, 0);
  if (ours < 0 || main < 0 || ours === main || total <= 0) {
    return null;
  }
  const mainKeeps = chosen ? MIN_WIDTH : Math.max(MAIN_SHARE * total, MAIN_MIN);
  const room = widths[ours] + widths[main] - mainKeeps; // what ours may have without squeezing main
  const width = Math.max(Math.min(wanted, Math.max(room, MIN_WIDTH)), 0);
  const change = Math.min(width - widths[ours], widths[main]);
  if (Math.abs(change) <= 1) {
    return null;
  }
  const next = [...widths];
  next[ours] += change;
  next[main] -= change;
  return next;
}

/**
 * Set the width of the side area that holds `widget` (taking the space from the main area, or
 * giving it back). JupyterLab has no API for a side panel's width: its side areas sit in a Lumino
 * SplitPanel (left area, main dock, right area) whose relative sizes are public, and the shell
 * saves them with the layout. `onlyWiden`: leave an area that is already as wide. Returns the
 * area's new width, or null when nothing changed.
 */
export function setSideAreaWidth(widget: Widget, width: number, onlyWiden = false, chosen = false): number | null {
  const found = sideArea(widget);
  if (!found) {
    return null;
  }
  const { split, area } = found;
  const widgets = Array.from(split.widgets);
  const ours = widgets.indexOf(area);
  const widths = widgets.map(w => (w.isVisible ? w.node.getBoundingClientRect().width : 0));
  if (ours < 0 || (onlyWiden && widths[ours] >= width - 1)) {
    return null;
  }
  // The main area: the widest other child (the dock panel).
  let main = -1;
  widths.forEach((w, i) => {
    if (i !== ours && (main < 0 || w > widths[main])) {
      main = i;
    }
  });
  const next = resizedWidths(widths, ours, main, width, chosen);
  if (!next || (onlyWiden && next[ours] <= widths[ours])) {
    return null;
  }
  const total = next.reduce((a, b) => a + b, 0);
  split.setRelativeSizes(next.map(w => w / total));
  return next[ours];
}

/** The SplitPanel the widget's side area sits in, and that area. */
export function sideArea(widget: Widget): { split: SplitPanel; area: Widget } | null {
  let area: Widget = widget;
  let split = widget.parent;
  while (split && !(split instanceof SplitPanel)) {
    area = split;
    split = split.parent;
  }
  if (!split || split.orientation !== 'horizontal') {
    return null;
  }
  return { split, area };
}

/** Where the width the user dragged the panel to is kept (the state database). */
export interface IWidthStore {
  load(): Promise<number | null>;
  save(width: number): Promise<void>;
}

/**
 * The panel's width: the user's, once they dragged its edge (kept in `store`, so it outlives a
 * reload), else the opening width for the window.
 */
export class PanelWidth {
  constructor(private readonly _store: IWidthStore | null) {
    this._saved = _store ? _store.load().catch(() => null) : Promise.resolve(null);
  }

  /** The panel was shown: give it the user's width, or widen it to the opening width. */
  async apply(widget: Widget): Promise<void> {
    const saved = await this._saved;
    if (!widget.isVisible) {
      return;
    }
    this._watchDrags(widget);
    if (saved !== null) {
      setSideAreaWidth(widget, saved, false, true);
    } else {
      setSideAreaWidth(widget, openingWidth(window.innerWidth), true);
    }
  }

  /** A drag of the split's handles that changed the panel's width is the user's choice: keep it. */
  private _watchDrags(widget: Widget): void {
    const found = sideArea(widget);
    if (!found || this._watched === found.split) {
      return;
    }
    this._watched = found.split;
    const { split, area } = found;
    split.node.addEventListener(
      'pointerdown',
      event => {
        if (!split.handles.includes(event.target as HTMLDivElement)) {
          return;
        }
        const before = area.node.getBoundingClientRect().width;
        const release = () => {
          document.removeEventListener('pointerup', release, true);
          requestAnimationFrame(() => {
            const after = Math.round(area.node.getBoundingClientRect().width);
            if (area.isVisible && Math.abs(after - before) > 2) {
              this._saved = Promise.resolve(after);
              void this._store?.save(after).catch(() => undefined);
            }
          });
        };
        document.addEventListener('pointerup', release, true);
      },
      true
    );
  }

  private _saved: Promise<number | null>;
  private _watched: SplitPanel | null = null;
}
