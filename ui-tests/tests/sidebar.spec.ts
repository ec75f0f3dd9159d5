/**
 * The VisCoder sidebar in a real JupyterLab: the replay backend answers (ui-tests/replies/),
 * the kernel side runs the same loop as %%viscoder, in a child kernel.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

import {
  BROKEN_PLOT,
  DEFAULT_WIDTH,
  OUTPUT_BUTTON,
  SETUP,
  VisCoderHelper,
  WORKING_PLOT
} from './helpers/VisCoderHelper';

const HORIZONTAL_REPLIES = path.join(
  process.env.VISCODER_UI_REPLIES ?? path.join(__dirname, '..', 'replies'),
  'horizontal.jsonl'
);
const SLOW_REPLIES = path.join(process.env.VISCODER_UI_REPLIES ?? path.join(__dirname, '..', 'replies'), 'slow.jsonl');

/** A working bar chart: vertical bars, one per region. */
const WORKING_BARS = [
  'import matplotlib.pyplot as plt',
  "totals = sales.groupby('region')['revenue'].sum()",
  'plt.bar(totals.index, totals.values)',
  'plt.show()'
].join('\n');

test.describe('VisCoder sidebar', () => {
  test('(a) fix a KeyError from the button under the error, accept, run: a plot', async ({
    page,
    tmpPath
  }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('fix-keyerror.ipynb', [SETUP, BROKEN_PLOT, '']);
    await vc.runCell(0);
    await vc.runCell(1);
    const output = await vc.output(1);
    await expect(output.locator('.jp-RenderedText[data-mime-type="application/vnd.jupyter.stderr"]')).toContainText(
      'KeyError'
    );

    // The button under the error opens the sidebar on that cell (the extension is not loaded yet),
    // at a width where a line of code fits, with the caret in the note box.
    const button = await vc.outputButton(1);
    const input = await vc.input(1);
    await button.click();
    await expect(vc.sidebar).toBeVisible();
    await expect(vc.sidebar.locator('.jp-VisCoder-code')).toContainText("plt.bar(sales['Region']");
    await expect(vc.sidebar.locator('.jp-VisCoder-error')).toContainText("KeyError: 'Region'");
    await expect.poll(async () => (await vc.sidebar.boundingBox())!.width).toBeGreaterThanOrEqual(DEFAULT_WIDTH - 5);
    await expect(vc.note).toBeFocused();
    await vc.shot('a1-before-fix', 'sidebar', 'sidebar-1-before-fix');

    const elapsed = await vc.fixAndWaitForProposal();
    testInfo.annotations.push({ type: 'click-to-proposal-ms', description: String(elapsed) });
    const log = vc.sidebar.locator('.jp-VisCoder-log');
    await expect(log).toContainText('Attempt 1 failed');
    // The done line says what the kernel verified of the figure, not a bare "working plot".
    await expect(log.locator('.jp-VisCoder-log-done')).toHaveText(
      /^Checked after 2 attempts \(\d+\.\d s from the click\): ran and drew 1 figure with 3 vertical bars\.$/
    );
    await expect(log).not.toContainText('Working plot');
    await expect(vc.proposal.locator('.jp-VisCoder-diff-added').first()).toBeVisible();
    await expect(vc.proposal.locator('img.jp-VisCoder-figure')).toBeVisible();
    // Nothing is written before the user chooses.
    expect(await vc.cellSource(1)).toBe(BROKEN_PLOT);

    // At the default width the decision is on screen without scrolling the panel.
    for (const name of ['Accept', 'Insert below', 'Discard']) {
      await expect(vc.decision.getByRole('button', { name, exact: true })).toBeInViewport({ ratio: 1 });
    }
    // The diff: the code font, one screen line per line of code (long lines scroll sideways), all of it
    // shown (no scrolling box inside the scrolling panel), and the panel itself never scrolls sideways.
    const diff = await vc.proposal.locator('.jp-VisCoder-diff').evaluate(box => {
      const lines = [...box.querySelectorAll<HTMLElement>('.jp-VisCoder-diff-line')];
      const heights = lines.map(line => line.getBoundingClientRect().height);
      const panel = box.closest('#viscoder-sidebar')!;
      return {
        lines: lines.length,
        wrapped: heights.filter(h => h > Math.min(...heights) + 1).length,
        whiteSpace: getComputedStyle(lines[0]).whiteSpace,
        font: getComputedStyle(box).fontFamily,
        codeFont: getComputedStyle(document.querySelector('.jp-Notebook .cm-content')!).fontFamily,
        overflowX: getComputedStyle(box).overflowX,
        hiddenRows: box.scrollHeight - box.clientHeight,
        panelSideways: panel.scrollWidth - panel.clientWidth
      };
    });
    expect(diff.lines).toBeGreaterThanOrEqual(7);
    expect(diff.wrapped).toBe(0);
    expect(diff.whiteSpace).toBe('pre');
    expect(diff.font).toBe(diff.codeFont); // the notebook's code font
    expect(diff.overflowX).toBe('auto');
    expect(diff.hiddenRows).toBeLessThanOrEqual(1);
    expect(diff.panelSideways).toBeLessThanOrEqual(1);
    // The figure spans the panel, not a thumbnail.
    const figure = vc.proposal.locator('img.jp-VisCoder-figure');
    expect((await figure.boundingBox())!.width).toBeGreaterThanOrEqual(DEFAULT_WIDTH - 60);
    await vc.shot('a2-proposal', 'sidebar', 'sidebar-3-proposed-fix');
    await vc.shot('a2-proposal-page', 'page', 'lab-sidebar-proposed-fix');

    // A click on the figure opens it at its natural size in the main area.
    await figure.click();
    const full = page.locator('#viscoder-figure img');
    await expect(full).toBeVisible();
    const size = await full.evaluate((img: HTMLImageElement) => ({
      natural: img.naturalWidth,
      shown: img.getBoundingClientRect().width
    }));
    expect(size.natural).toBeGreaterThan(0);
    expect(size.shown).toBe(size.natural);
    await vc.shot('a2-figure-full-size', 'page');

    // Closed, back in the notebook, in the cell below (where Shift+Enter leaves you), reading the
    // end of the traceback: the code is above, off screen.
    await page.locator('.lm-TabBar-tab', { hasText: 'Proposed figure' }).locator('.lm-TabBar-tabCloseIcon').click();
    await expect(page.locator('#viscoder-figure')).toHaveCount(0);
    await page.notebook.activate('fix-keyerror.ipynb');
    await page.notebook.selectCells(2);
    await button.evaluate(node => node.scrollIntoView({ block: 'start' }));
    await expect(input).not.toBeInViewport();

    await vc.clickProposalButton('Accept');
    // The notebook scrolled to the new code (away from the old traceback), and the panel no
    // longer shows the old error next to it. (Checked first: galata scrolls to cells it reads.)
    await expect(input).toBeInViewport({ timeout: 10_000 });
    await expect(vc.sidebar.locator('.jp-VisCoder-code')).toContainText("groupby('region')");
    await expect(vc.sidebar.locator('.jp-VisCoder-error')).toHaveCount(0);
    await expect(vc.notice).toContainText('Accepted');
    const fixed = await vc.cellSource(1);
    expect(fixed).toContain("totals = df.groupby('region')['revenue'].sum()");
    expect(fixed).toContain('df = sales');
    await vc.shot('a3-accepted', 'sidebar', 'sidebar-4-accepted');

    // One undo in the cell restores the user's code (and its error); redo brings the fix back.
    const editor = (await page.notebook.getCellInputLocator(1))!.locator('.cm-content');
    await editor.click();
    await page.keyboard.press('Control+z');
    await expect.poll(() => vc.cellSource(1)).toBe(BROKEN_PLOT);
    await expect(vc.sidebar.locator('.jp-VisCoder-error')).toContainText("KeyError: 'Region'");
    await page.keyboard.press('Control+Shift+z');
    await expect.poll(() => vc.cellSource(1)).toBe(fixed);
    await expect(vc.sidebar.locator('.jp-VisCoder-error')).toHaveCount(0);
    await page.keyboard.press('Escape');

    await vc.runCell(1);
    await expect(output.locator('img')).toBeVisible();
    await expect(output).not.toContainText('KeyError');
    // The cell ran: "Accepted ... Run it to see the plot" and the log of the fix are old news.
    await expect(vc.notice).toHaveCount(0);
    await expect(vc.sidebar.locator('.jp-VisCoder-log')).toHaveCount(0);
    await vc.shot('a4-fixed-cell-ran', 'page', 'notebook-after-accept-and-run');
  });

  test('(f) a new target starts clean: after Accept, the buttons under outputs', async ({
    page,
    tmpPath
  }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('two-plots.ipynb', [SETUP, BROKEN_PLOT, WORKING_PLOT]);
    await vc.runCell(0);
    await vc.runCell(1);
    await vc.runCell(2);
    // The buttons say what they do: open VisCoder on the cell (the sidebar's own button fixes).
    const errorButton = await vc.outputButton(1);
    const plotButton = await vc.outputButton(2);
    await expect(plotButton).toBeVisible();
    await expect(page.locator('.jp-VisCoder-outputButton:visible')).toHaveText([OUTPUT_BUTTON, OUTPUT_BUTTON]);
    await expect(page.locator('.jp-Notebook').getByRole('button', { name: 'Fix this plot' })).toHaveCount(0);

    await errorButton.click();
    await expect(vc.note).toBeFocused();
    await vc.note.fill('make it run');
    await vc.fixAndWaitForProposal();
    // Deciding while looking at the full-size figure: the figure tab goes, the notebook comes back.
    await vc.proposal.locator('img.jp-VisCoder-figure').click();
    await expect(page.locator('#viscoder-figure img')).toBeVisible();
    await vc.clickProposalButton('Accept');
    await expect(vc.notice).toContainText('Accepted');
    await expect(page.locator('#viscoder-figure')).toHaveCount(0);
    await expect(page.locator('.jp-NotebookPanel', { hasText: 'plt.plot([1, 3, 2])' })).toBeVisible();

    // The same cell's button again: a fresh start on it, the note that asked for the fix gone.
    await errorButton.click();
    await expect(vc.notice).toHaveCount(0);
    await expect(vc.sidebar.locator('.jp-VisCoder-log')).toHaveCount(0);
    await expect(vc.note).toHaveValue('');
    await expect(vc.note).toBeFocused();

    // Another plot's button: the panel is about that cell only, nothing left of the last fix.
    await plotButton.click();
    await expect(vc.sidebar.locator('.jp-VisCoder-where')).toContainText('Cell [3] in two-plots.ipynb');
    await expect(vc.sidebar.locator('.jp-VisCoder-code')).toContainText('plt.plot([1, 3, 2])');
    await expect(vc.notice).toHaveCount(0);
    await expect(vc.problem).toHaveCount(0);
    await expect(vc.sidebar.locator('.jp-VisCoder-log')).toHaveCount(0);
    await expect(vc.sidebar.locator('.jp-VisCoder-error')).toHaveCount(0);
    await expect(vc.note).toHaveValue('');
    await expect(vc.note).toBeFocused();
    await expect(vc.fixButton).toBeEnabled();
    await vc.shot('f1-new-target-clean');
  });

  test('(g) a note the first figure misses: the second is proposed, with only its own figure', async ({
    page,
    tmpPath
  }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    // The request checks are opt-in (VisCoder.checks is off by default since the ablation).
    await vc.openNotebook('horizontal.ipynb', [
      `${SETUP}\n%load_ext viscoder_jupyter\n%config VisCoder.replay = ${JSON.stringify(HORIZONTAL_REPLIES)}\n%config VisCoder.checks = True`,
      WORKING_BARS
    ]);
    await vc.runCell(0);
    await vc.runCell(1);
    await (await vc.outputButton(1)).click();
    await vc.note.fill('make the bars horizontal');
    await vc.fixAndWaitForProposal();
    const log = vc.sidebar.locator('.jp-VisCoder-log');
    // Attempt 1 drew vertical bars: a figure, but not the one asked for.
    await expect(log.locator('.jp-VisCoder-log-failed')).toContainText('Attempt 1 failed');
    await expect(log.locator('.jp-VisCoder-log-failed')).toContainText('horizontal');
    await expect(log.locator('.jp-VisCoder-log-done')).toHaveText(
      /^Checked after 2 attempts \(.* s from the click\): ran and drew 1 figure with 3 horizontal bars; follows the request: horizontal bars\.$/
    );
    // The proposal shows the figure of the code it proposes, not attempt 1's as well.
    await expect(vc.proposal.locator('img.jp-VisCoder-figure')).toHaveCount(1);
    await expect(
      vc.proposal.locator('.jp-VisCoder-diff-added', { hasText: 'plt.barh(totals.index, totals.values)' })
    ).toHaveCount(1);
    await vc.shot('g1-proposal-checked');
    await vc.clickProposalButton('Discard');
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
    // The summary says what was verified of the figure (viscoder_jupyter/progress.py).
    await expect(output).toContainText('VisCoder: ran and drew 1 figure');
    await expect(output).toContainText('after 2 attempts');
    await expect(output.locator('img')).toBeVisible();
    await vc.shot('b1-magic-inserted-cell', 'page');
  });

  test('(c) Discard leaves the notebook unchanged', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    await vc.openNotebook('discard.ipynb', [SETUP, BROKEN_PLOT]);
    await vc.runCell(0);
    await vc.runCell(1);
    await (await vc.outputButton(1)).click();
    const before = await vc.snapshot('discard.ipynb');

    await vc.note.fill('use a log scale');
    await vc.fixAndWaitForProposal();
    await vc.shot('c1-proposal-with-note');
    await vc.clickProposalButton('Discard');
    await expect(vc.notice).toContainText('Discarded: the notebook was not changed.');
    expect(await vc.snapshot('discard.ipynb')).toEqual(before);
    expect(await page.notebook.getCellCount()).toBe(2);
    await vc.shot('c2-discarded');
    // The button again: the notice of the last run goes, the note stays for another try.
    await (await vc.outputButton(1)).click();
    await expect(vc.notice).toHaveCount(0);
    await expect(vc.sidebar.locator('.jp-VisCoder-log')).toHaveCount(0);
    await expect(vc.note).toHaveValue('use a log scale');
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
    await (await vc.outputButton(1)).click();
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
    await (await vc.outputButton(1)).click();

    await vc.fixButton.click();
    const cancel = vc.sidebar.getByRole('button', { name: 'Cancel' });
    await expect(vc.sidebar.locator('.jp-VisCoder-log')).toContainText('Attempt 1 of 4');
    await expect(vc.sidebar.locator('.jp-VisCoder-stream')).toContainText('time.sleep(600)');
    await vc.shot('e1-running', 'sidebar', 'sidebar-2-during-fix');
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
    await vc.shot('e3-kernel-busy', 'sidebar', 'sidebar-kernel-busy');

    // Once the cell is done, Fix works: the cancelled attempt no longer holds the child kernel.
    await vc.waitForKernelIdle();
    await vc.fixAndWaitForProposal();
    await vc.clickProposalButton('Discard');
    expect(await vc.cellSource(1)).toBe(BROKEN_PLOT);
  });
});
