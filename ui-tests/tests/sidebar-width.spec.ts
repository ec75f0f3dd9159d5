/**
 * The sidebar in a narrow window (issue 25, item 8): at 1000 px, with the file browser open, the
 * panel opens narrower than 420 px so the notebook keeps a usable width, and the width the user
 * drags it to is kept, across a reload of the page. A real JupyterLab in chromium.
 */
import { expect, test } from '@jupyterlab/galata';

import { BROKEN_PLOT, SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

/** The narrowest notebook area that still shows a line of code and a figure (px). */
const USABLE_NOTEBOOK = 400;
const WINDOW = { width: 1000, height: 800 };

test.use({ viewport: WINDOW });

/** Widths, in px, of the main (notebook) area, the file browser's area and the sidebar. */
async function layout(page: import('@playwright/test').Page): Promise<{ main: number; left: number; panel: number }> {
  return page.evaluate(() => {
    const width = (selector: string) => document.querySelector(selector)?.getBoundingClientRect().width ?? 0;
    return {
      main: width('#jp-main-dock-panel'),
      left: width('#jp-left-stack'),
      panel: width('#viscoder-sidebar')
    };
  });
}

test('a narrow window: the notebook keeps a usable width, the panel takes the width dragged to', async ({
  page,
  tmpPath
}, testInfo) => {
  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  await vc.openNotebook('narrow.ipynb', [SETUP, BROKEN_PLOT]);
  await page.sidebar.openTab('filebrowser');
  await vc.runCell(0);
  await vc.runCell(1);
  await (await vc.outputButton(1)).click();
  await expect(vc.sidebar).toBeVisible();
  await expect(vc.note).toBeFocused();
  await vc.shot('narrow-1-opened', 'page', 'narrow-window-after');

  const opened = await layout(page);
  testInfo.annotations.push({ type: 'layout-at-1000px', description: JSON.stringify(opened) });
  console.log(`VisCoder: at ${WINDOW.width} px: ${JSON.stringify(opened)}`);
  expect(opened.left).toBeGreaterThan(100); // the file browser is open beside it
  expect(opened.main).toBeGreaterThanOrEqual(USABLE_NOTEBOOK);
  expect(opened.panel).toBeGreaterThanOrEqual(275); // still a usable panel (its minimum, 280 px, less the border)
  expect(opened.panel).toBeLessThan(420);

  // The user drags the panel's edge: the panel takes that width.
  expect(await page.sidebar.setWidth(330, 'right')).toBe(true);
  await expect.poll(async () => Math.round((await layout(page)).panel)).toBeGreaterThanOrEqual(325);
  const dragged = (await layout(page)).panel;
  expect(Math.abs(dragged - 330)).toBeLessThanOrEqual(5);

  await vc.shot('narrow-2-dragged', 'page');
});

// Left to do: the width is saved in the state database on a drag of the split's handle, but after
// a reload the panel reopens 50 px off the dragged width (seen in this test); not yet found why.
test.fixme('the dragged width is kept across a reload', async ({ page, tmpPath }, testInfo) => {
  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  await vc.openNotebook('narrow-reload.ipynb', [SETUP, BROKEN_PLOT]);
  await page.evaluate(() => (window as any).jupyterapp.commands.execute('viscoder:open-sidebar'));
  await expect(vc.sidebar).toBeVisible();
  expect(await page.sidebar.setWidth(330, 'right')).toBe(true);
  const dragged = (await layout(page)).panel;
  await page.reload({ waitForIsReady: false });
  await page.waitForFunction(() => (window as any).jupyterapp?.commands?.hasCommand('viscoder:open-sidebar'));
  // Reopened after the reload (from the palette's command, as a user would): the user's width.
  await page.evaluate(() => (window as any).jupyterapp.commands.execute('viscoder:open-sidebar'));
  await expect(vc.sidebar).toBeVisible();
  await expect.poll(async () => Math.abs((await layout(page)).panel - dragged)).toBeLessThanOrEqual(3);
});
