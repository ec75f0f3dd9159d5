/**
 * The VisCoder sidebar in a real JupyterLab: the replay backend answers (ui-tests/replies/),
 * the kernel side runs the same loop as %%viscoder, in a child kernel.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

import { BROKEN_PLOT, SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

const SLOW_REPLIES = path.join(process.env.VISCODER_UI_REPLIES ?? path.join(__dirname, '..', 'replies'), 'slow.jsonl');

test.describe('VisCoder sidebar', () => {
  test('(a) fix a KeyError from the button under the error, accept, run: a plot', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('fix-keyerror.ipynb', [SETUP, BROKEN_PLOT]);
    await vc.runCell(0);
    await vc.runCell(1);
    const output = await vc.output(1);
    await expect(output.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')).toContainText('KeyError');

    // The button under the error opens the sidebar on that cell (the extension is not loaded yet).
    await output.getByRole('button', { name: 'Fix with VisCoder' }).click();
    await expect(vc.sidebar).toBeVisible();
    await expect(vc.sidebar.locator('.jp-VisCoder-code')).toContainText("plt.bar(sales['Region']");
    await expect(vc.sidebar.locator('.jp-VisCoder-error')).toContainText("KeyError: 'Region'");
    await vc.shot('a1-before-fix');

    const elapsed = await vc.fixAndWaitForProposal();
    testInfo.annotations.push({ type: 'click-to-proposal-ms', description: String(elapsed) });
    const log = vc.sidebar.locator('.jp-VisCoder-log');
    await expect(log).toContainText('Attempt 1 failed');
    await expect(log).toContainText('Working plot after 2 attempts');
    await expect(vc.proposal.locator('.jp-VisCoder-diff-added').first()).toBeVisible();
    await expect(vc.proposal.locator('img.jp-VisCoder-figure')).toBeVisible();
    // Nothing is written before the user chooses.
    expect(await vc.cellSource(1)).toBe(BROKEN_PLOT);
    await vc.shot('a2-proposal');

    await vc.clickProposalButton('Accept');
    const fixed = await vc.cellSource(1);
    expect(fixed).toContain("totals = df.groupby('region')['revenue'].sum()");
    expect(fixed).toContain('df = sales');
    await expect(vc.notice).toContainText('Accepted');
    await vc.shot('a3-accepted');

    // One undo in the cell restores the user's code; redo brings the fix back.
    const editor = (await page.notebook.getCellInputLocator(1))!.locator('.cm-content');
    await editor.click();
    await page.keyboard.press('Control+z');
    await expect.poll(() => vc.cellSource(1)).toBe(BROKEN_PLOT);
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => vc.cellSource(1)).toBe(fixed);
    await page.keyboard.press('Escape');

    await vc.runCell(1);
    await expect(output.locator('img')).toBeVisible();
    await expect(output).not.toContainText('KeyError');
    await vc.shot('a4-fixed-cell-ran', 'page');
  });

  test('(b) %%viscoder inserts the working code in a new cell below', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('magic.ipynb', [
      SETUP + '\n%load_ext viscoder_jupyter',
      '%%viscoder sales\nbar chart of revenue by region'
    ]);
    await vc.runCell(0);
    await vc.runCell(1);
    await expect.poll(() => page.notebook.getCellCount()).toBe(3);
    const inserted = await vc.cellSource(2);
    expect(inserted.startsWith('# %%viscoder: bar chart of revenue by region\n')).toBe(true);
    expect(inserted).toContain("totals = df.groupby('region')['revenue'].sum()");
    const output = await vc.output(1);
    await expect(output).toContainText('working plot after 2 attempts');
    await expect(output.locator('img')).toBeVisible();
    await vc.shot('b1-magic-inserted-cell', 'page');
  });

  test('(c) Discard leaves the notebook unchanged', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('discard.ipynb', [SETUP, BROKEN_PLOT]);
    await vc.runCell(0);
    await vc.runCell(1);
    const output = await vc.output(1);
    await output.getByRole('button', { name: 'Fix with VisCoder' }).click();
    const before = await vc.snapshot('discard.ipynb');

    await vc.note.fill('use a log scale');
    await vc.fixAndWaitForProposal();
    await vc.shot('c1-proposal-with-note');
    await vc.clickProposalButton('Discard');
    await expect(vc.notice).toContainText('Discarded: the notebook was not changed.');
    expect(await vc.snapshot('discard.ipynb')).toEqual(before);
    expect(await page.notebook.getCellCount()).toBe(2);
    await vc.shot('c2-discarded');
  });

  test('(d) a second open notebook is not touched', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('other.ipynb', [SETUP, "print(sales['revenue'].sum())", BROKEN_PLOT]);
    await vc.runCell(0);
    await vc.runCell(1);
    await vc.runCell(2);
    const other = await vc.snapshot('other.ipynb');

    await vc.openNotebook('target.ipynb', [SETUP, BROKEN_PLOT]);
    await vc.runCell(0);
    await vc.runCell(1);
    await (await vc.output(1)).getByRole('button', { name: 'Fix with VisCoder' }).click();
    await expect(vc.sidebar.locator('.jp-VisCoder-where')).toContainText('target.ipynb');
    await vc.fixAndWaitForProposal();

    // While the proposal waits, the sidebar stays on its cell even when the user looks elsewhere.
    await page.notebook.activate('other.ipynb');
    await expect(vc.sidebar.locator('.jp-VisCoder-where')).toContainText('target.ipynb');
    await page.notebook.activate('target.ipynb');
    await vc.clickProposalButton('Insert below');
    expect(await page.notebook.getCellCount()).toBe(3);
    expect(await vc.cellSource(1)).toBe(BROKEN_PLOT);
    expect(await vc.cellSource(2)).toContain("groupby('region')");

    expect(await vc.snapshot('other.ipynb')).toEqual(other);
    // Idle again, the sidebar follows the active cell into the other notebook.
    await page.notebook.activate('other.ipynb');
    await page.notebook.selectCells(1);
    await expect(vc.sidebar.locator('.jp-VisCoder-where')).toContainText('other.ipynb');
    await expect(vc.sidebar.locator('.jp-VisCoder-code')).toContainText("print(sales['revenue'].sum())");
    await vc.shot('d1-follows-other-notebook');
  });

  test('Cancel stops a running fix; a busy kernel is said plainly', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('cancel.ipynb', [
      `${SETUP}\n%load_ext viscoder_jupyter\n%config VisCoder.replay = ${JSON.stringify(SLOW_REPLIES)}\n%config VisCoder.timeout = 900`,
      BROKEN_PLOT,
      'import time\ntime.sleep(15)'
    ]);
    await vc.runCell(0);
    await vc.runCell(1);
    await (await vc.output(1)).getByRole('button', { name: 'Fix with VisCoder' }).click();

    await vc.fixButton.click();
    const cancel = vc.sidebar.getByRole('button', { name: 'Cancel' });
    await expect(vc.sidebar.locator('.jp-VisCoder-log')).toContainText('Attempt 1 of 4');
    await expect(vc.sidebar.locator('.jp-VisCoder-stream')).toContainText('time.sleep(600)');
    await vc.shot('e1-running');
    await cancel.click();
    await expect(vc.problem).toContainText('Cancelled: the model and the child kernel were stopped');
    await expect(cancel).toBeHidden();
    expect(await vc.cellSource(1)).toBe(BROKEN_PLOT);
    await vc.shot('e2-cancelled');

    // A cell keeps the kernel busy: the panel says so instead of queueing the fix.
    await page.notebook.runCell(2, { inplace: true, wait: false });
    await page.waitForFunction(
      () => (window as any).jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status === 'busy'
    );
    await page.notebook.selectCells(1);
    await vc.fixButton.click();
    await expect(vc.problem).toContainText('The kernel is busy running a cell');
    await vc.shot('e3-kernel-busy');

    // Once the cell is done, Fix works: the cancelled attempt no longer holds the child kernel.
    await vc.waitForKernelIdle();
    await vc.fixAndWaitForProposal();
    await vc.clickProposalButton('Discard');
    expect(await vc.cellSource(1)).toBe(BROKEN_PLOT);
  });
});
