/**
 * VisCoder in Notebook 7 (`pip install notebook`): the same server as the other tests serves its
 * /notebooks/ page when the `notebook` package is installed. The magic, the panel in Notebook 7's
 * right side panel and the buttons under outputs, with the replay backend (ui-tests/replies/fix.jsonl:
 * a KeyError, then a working plot; each notebook's kernel replays it from the start).
 */
import { expect, Page, test } from '@playwright/test';

import { Notebook7Helper } from './helpers/Notebook7Helper';
import { BROKEN_PLOT, SETUP } from './helpers/VisCoderHelper';

const PLUGINS = [
  'viscoder-jupyter:bridge',
  'viscoder-jupyter:sidebar',
  'viscoder-jupyter:fix-buttons',
  'viscoder-jupyter:live-view'
];

/** Errors the page reports that name VisCoder (Notebook 7 logs a few of its own). */
function recordOurErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', error => {
    if (/viscoder/i.test(`${error.message}\n${error.stack}`)) {
      errors.push(error.message);
    }
  });
  page.on('console', message => {
    if ((message.type() === 'error' || message.type() === 'warning') && /viscoder/i.test(message.text())) {
      errors.push(message.text());
    }
  });
  return errors;
}

test.describe('VisCoder in Notebook 7', () => {
  test('every VisCoder plugin starts, and %%viscoder draws the plot and inserts its code below', async ({
    page
  }, testInfo) => {
    const errors = recordOurErrors(page);
    const nb = new Notebook7Helper(page, testInfo);
    await nb.open('nb7-magic.ipynb', [
      SETUP + '\n%load_ext viscoder_jupyter',
      '%%viscoder sales\nbar chart of revenue by region'
    ]);
    expect(await page.evaluate(() => (window as any).jupyterapp.name)).toBe('Jupyter Notebook');
    const activated = await page.evaluate(
      ids => ids.filter(id => (window as any).jupyterapp.isPluginActivated(id)),
      PLUGINS
    );
    expect(activated).toEqual(PLUGINS);

    await nb.runCell(0);
    await nb.runCell(1);
    await expect.poll(async () => (await nb.sources()).length).toBe(3);
    const inserted = (await nb.sources())[2];
    expect(inserted.startsWith('# %%viscoder: bar chart of revenue by region\n')).toBe(true);
    expect(inserted).toContain("totals = df.groupby('region')['revenue'].sum()");
    const output = nb.output(1);
    await expect(output).toContainText(/drew 1 figure/);
    await expect(output).toContainText('after 2 attempts');
    await expect(output.locator('img').first()).toBeVisible();
    // No "Fix in VisCoder…" under the magic's own plot: its code is in the inserted cell.
    await expect(nb.outputButton(1)).toHaveCount(0);
    await nb.shot('nb7-1-magic');
    expect(errors).toEqual([]);
  });

  test('the button under an error opens the VisCoder panel on the right; its fix is accepted into the cell', async ({
    page
  }, testInfo) => {
    const errors = recordOurErrors(page);
    const nb = new Notebook7Helper(page, testInfo);
    await nb.open('nb7-fix.ipynb', [SETUP, BROKEN_PLOT]);
    await nb.runCell(0);
    await nb.runCell(1);
    await expect(nb.output(1)).toContainText('KeyError');
    // The side panels start closed: the notebook has the whole width.
    await expect(nb.sidebar).toBeHidden();

    await nb.outputButton(1).click();
    await expect(nb.sidebar).toBeVisible();
    expect(await nb.shownIn('right')).toEqual(['viscoder-sidebar']);
    // On the right of the notebook, beside it, not over it.
    const notebookBox = (await page.locator('.jp-NotebookPanel').boundingBox())!;
    const panelBox = (await nb.sidebar.boundingBox())!;
    expect(panelBox.x).toBeGreaterThanOrEqual(notebookBox.x + notebookBox.width - 1);
    await expect(nb.sidebar.locator('.jp-VisCoder-where')).toContainText('nb7-fix.ipynb');
    await expect(nb.sidebar.locator('.jp-VisCoder-code')).toContainText("plt.bar(sales['Region']");
    await expect(nb.sidebar.locator('.jp-VisCoder-error')).toContainText("KeyError: 'Region'");

    await nb.sidebar.getByRole('button', { name: 'Fix this plot' }).click();
    await expect(nb.proposal).toBeVisible();
    await expect(nb.proposal.locator('img.jp-VisCoder-figure')).toBeVisible();
    expect((await nb.sources())[1]).toBe(BROKEN_PLOT); // nothing written before the user chooses
    await nb.shot('nb7-2-proposal', 'notebook7-sidebar');

    // A click on the figure shows it at its natural size (a dialog: Notebook 7's main area holds
    // only the notebook); Escape closes it.
    await nb.proposal.locator('img.jp-VisCoder-figure').click();
    const full = page.locator('#viscoder-figure img');
    await expect(full).toBeVisible();
    const size = await full.evaluate((img: HTMLImageElement) => ({
      natural: img.naturalWidth,
      shown: img.getBoundingClientRect().width
    }));
    expect(size.natural).toBeGreaterThan(0);
    expect(size.shown).toBe(size.natural);
    await nb.shot('nb7-3-figure');
    await page.keyboard.press('Escape');
    await expect(page.locator('#viscoder-figure')).toHaveCount(0);

    await nb.sidebar.locator('.jp-VisCoder-decision').getByRole('button', { name: 'Accept', exact: true }).click();
    await expect(nb.proposal).toBeHidden();
    expect((await nb.sources())[1]).toContain("groupby('region')");
    await nb.runCell(1);
    await expect(nb.output(1).locator('img').first()).toBeVisible();
    await expect(nb.output(1)).not.toContainText('KeyError');
    expect(errors).toEqual([]);
  });

  test('View > Right Sidebar shows and hides the VisCoder panel', async ({ page }, testInfo) => {
    const nb = new Notebook7Helper(page, testInfo);
    await nb.open('nb7-menu.ipynb', [SETUP]);
    await expect(nb.sidebar).toBeHidden();
    const showPanel = async () => {
      await page.locator('#jp-MainMenu').getByRole('menuitem', { name: 'View', exact: true }).click();
      await page.locator('.lm-Menu-item', { hasText: 'Right Sidebar' }).click();
      await page.locator('.lm-Menu-item', { hasText: 'Show VisCoder: fix this plot' }).click();
    };
    await showPanel();
    await expect(nb.sidebar).toBeVisible();
    await expect(nb.sidebar.locator('.jp-VisCoder-where')).toContainText('nb7-menu.ipynb');
    await showPanel(); // the same item again hides it
    await expect(nb.sidebar).toBeHidden();
  });
});
