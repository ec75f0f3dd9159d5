import { SplitPanel, Widget } from '@lumino/widgets';

/** The panel's width when it opens: a diff line of a cell and a readable figure fit. */
export const DEFAULT_WIDTH = 420;
/** The main area keeps at least this share of the row. */
const MAIN_SHARE = 0.45;

/**
 * Widen the side area that holds `widget` to `width` pixels (taking the space from the main
 * area), when it is narrower. JupyterLab has no API for a side panel's width: its side areas
 * sit in a Lumino SplitPanel (left area, main dock, right area) whose relative sizes are
 * public, and the shell saves them with the layout. Returns the area's new width, or null when
 * nothing changed.
 */
export function widenSideArea(widget: Widget, width: number = DEFAULT_WIDTH): number | null {
  let area: Widget = widget;
  let split = widget.parent;
  while (split && !(split instanceof SplitPanel)) {
    area = split;
    split = split.parent;
  }
  if (!split || split.orientation !== 'horizontal') {
    return null;
  }
  const widgets = Array.from(split.widgets);
  const ours = widgets.indexOf(area);
  const widths = widgets.map(w => (w.isVisible ? w.node.getBoundingClientRect().width : 0));
  const total = widths.reduce((a, b) => a + b, 0);
  if (ours < 0 || total <= 0 || widths[ours] >= width - 1) {
    return null;
  }
  // The main area: the widest other child (the dock panel).
  let main = -1;
  widths.forEach((w, i) => {
    if (i !== ours && (main < 0 || w > widths[main])) {
      main = i;
    }
  });
  if (main < 0) {
    return null;
  }
  const give = Math.min(width - widths[ours], widths[main] - MAIN_SHARE * total);
  if (give <= 1) {
    return null;
  }
  widths[ours] += give;
  widths[main] -= give;
  split.setRelativeSizes(widths.map(w => w / total));
  return widths[ours];
}
