/**
 * The panel's width (issue 25, item 8): 420 px in a wide window, a share of a narrow one, never
 * below what its lines need; the notebook keeps a usable width. Pure rules: the browser test
 * (ui-tests/tests/sidebar-width.spec.ts) drags, reloads and measures the real layout.
 */
import { describe, expect, test } from 'vitest';

import { DEFAULT_WIDTH, MIN_WIDTH, openingWidth, resizedWidths } from '../../sidebar/width';

describe('the width the panel opens at', () => {
  test('420 px in a wide window', () => {
    expect(openingWidth(1400)).toBe(DEFAULT_WIDTH);
    expect(openingWidth(2560)).toBe(DEFAULT_WIDTH);
  });

  test('35% of a narrow window, not below the panel’s minimum', () => {
    expect(openingWidth(1000)).toBe(350);
    expect(openingWidth(900)).toBe(315);
    expect(openingWidth(600)).toBe(MIN_WIDTH);
  });
});

describe('what the panel takes from the notebook', () => {
  // [file browser, notebook, panel] in px, as the shell's split panel holds them.
  test('in a wide window the panel gets its width', () => {
    expect(resizedWidths([250, 1084, 0], 2, 1, 420)).toEqual([250, 664, 420]);
  });

  test('at 1000 px with the file browser open the notebook keeps 400 px and the panel its minimum', () => {
    const next = resizedWidths([250, 684, 0], 2, 1, openingWidth(1000))!;
    expect(next[1]).toBeGreaterThanOrEqual(400);
    expect(next[2]).toBeGreaterThanOrEqual(MIN_WIDTH);
    expect(next[2]).toBeLessThan(DEFAULT_WIDTH);
  });

  test('a narrower width the user chose gives the notebook back its space', () => {
    expect(resizedWidths([250, 264, 420], 2, 1, 300, true)).toEqual([250, 384, 300]);
    expect(resizedWidths([250, 684, 280], 2, 1, 500, true)).toEqual([250, 464, 500]); // wider, too
  });

  test('nothing to do when the panel already has the width', () => {
    expect(resizedWidths([250, 664, 420], 2, 1, 420)).toBeNull();
  });
});
