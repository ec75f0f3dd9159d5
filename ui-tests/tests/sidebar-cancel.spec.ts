/**
 * Cancel in the sidebar while a notebook cell runs (issue 25, item 3): the fix stops at once,
 * and the user's cell runs on to its end. A real JupyterLab and kernel; the replay backend's
 * slow reply (ui-tests/replies/slow.jsonl) keeps the child kernel in time.sleep(600).
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

import { BROKEN_PLOT, SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

const SLOW_REPLIES = path.join(process.env.VISCODER_UI_REPLIES ?? path.join(__dirname, '..', 'replies'), 'slow.jsonl');
/** The user's long cell: it prints when it is done. */
const LONG_CELL = "import time\ntime.sleep(60)\nprint('the long cell finished')";

test('Cancel stops the fix while a notebook cell runs, and the cell runs on', async ({ page, tmpPath }, testInfo) => {
  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  await vc.openNotebook('cancel-busy.ipynb', [
    `${SETUP}\n%load_ext viscoder_jupyter\n%config VisCoder.replay = ${JSON.stringify(SLOW_REPLIES)}\n%config VisCoder.timeout = 900`,
    BROKEN_PLOT,
    LONG_CELL
  ]);
  await vc.runCell(0);
  await vc.runCell(1);
  await (await vc.outputButton(1)).click();

  // The fix is running code in the child kernel (the slow reply sleeps there for 10 minutes)...
  await vc.fixButton.click();
  const log = vc.sidebar.locator('.jp-VisCoder-log');
  await expect(log).toContainText('Attempt 1: running the code');

  // ...when the user runs a long cell: the notebook's kernel is busy with it.
  await page.notebook.runCell(2, { inplace: true, wait: false });
  await page.waitForFunction(() => {
    const status = (window as any).jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.status;
    return status === 'busy';
  });
  const longOutput = await vc.output(2);
  const longPrompt = (await page.notebook.getCellLocator(2))!.locator('.jp-InputPrompt');
  await expect(longPrompt).toHaveText('[*]:');

  const pressed = Date.now();
  await vc.sidebar.getByRole('button', { name: 'Cancel' }).click();
  // Cancelled while the cell still runs: not queued behind it (the cell sleeps 60 s; this waits 40).
  // The panel moves on to the long cell, the active one, and says how the fix of cell #2 ended.
  await expect(vc.notice).toHaveText(
    'Cell #2: Cancelled: the model and the child kernel were stopped; nothing was changed.',
    { timeout: 40_000 }
  );
  const cancelMs = Date.now() - pressed;
  console.log(`VisCoder: Cancel to "Cancelled" while a cell runs: ${cancelMs} ms`);
  testInfo.annotations.push({ type: 'cancel-to-cancelled-ms', description: String(cancelMs) });
  expect(await longOutput.textContent()).not.toContain('the long cell finished');
  await expect(longPrompt).toHaveText('[*]:'); // still running
  await expect(vc.sidebar.getByRole('button', { name: 'Cancel' })).toBeHidden();
  await expect(vc.proposal).toBeHidden();
  await vc.shot('cancel-busy-1-cancelled');

  // The user's cell was not interrupted: it finishes, and no proposal turns up afterwards.
  await expect(longOutput).toContainText('the long cell finished', { timeout: 90_000 });
  await expect(longOutput).not.toContainText('KeyboardInterrupt');
  await expect(longPrompt).toHaveText(/^\[\d+\]:$/);
  await vc.waitForKernelIdle();
  await expect(vc.proposal).toBeHidden();
  expect(await vc.cellSource(1)).toBe(BROKEN_PLOT);
});
