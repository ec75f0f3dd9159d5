/**
 * The kernel goes away during a %%viscoder run: the live view (ipywidgets, gone with the kernel)
 * becomes plain text that says the run stopped, with the run's last record
 * (labextension/src/liveView/, viscoder_jupyter/progress.py WidgetProgress).
 */
import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';
import { execFileSync } from 'child_process';
import * as path from 'path';

import { SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

/** One recorded reply whose code sleeps for two minutes: the run is still going when the kernel goes. */
const LONG_REPLY = path.join(process.env.VISCODER_UI_REPLIES ?? path.join(__dirname, '..', 'replies'), 'restart.jsonl');
const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json';

/** The VisCoder state (metadata.viscoder.state) of each output of a cell of the active notebook. */
async function viscoderStates(page: IJupyterLabPageFixture, index: number): Promise<(string | null)[]> {
  return page.evaluate(i => {
    const panel = (window as any).jupyterapp.shell.currentWidget;
    const outputs = panel.content.model.cells.get(i).outputs;
    const states: (string | null)[] = [];
    for (let k = 0; k < outputs.length; k++) {
      states.push(outputs.get(k).metadata?.viscoder?.state ?? null);
    }
    return states;
  }, index);
}

/** Open a notebook and start a long %%viscoder run in it; returns the run's output area once its live view shows. */
async function startLongRun(vc: VisCoderHelper, name: string): Promise<Locator> {
  await vc.openNotebook(name, [
    `${SETUP}\n%load_ext viscoder_jupyter\n%config VisCoder.replay = ${JSON.stringify(LONG_REPLY)}\n%config VisCoder.timeout = 900`,
    '%%viscoder sales\nbar chart of revenue by region'
  ]);
  await vc.runCell(0);
  await vc.page.notebook.runCell(1, { inplace: true, wait: false });
  // The run's live view: a widget, at the first attempt, its display marked running.
  const output = await vc.output(1);
  await expect(output.locator('.jupyter-widgets').first()).toContainText('attempt 1 of 4: running the code');
  await expect.poll(() => viscoderStates(vc.page, 1)).toContain('running');
  return output;
}

/** The output is the run's last word, in plain text; nothing of the widget is left, in the page or the notebook. */
async function expectStopped(vc: VisCoderHelper, output: Locator, name: string, reason: string): Promise<void> {
  const text = output.locator('.jp-RenderedText[data-mime-type="text/plain"]');
  await expect(text).toContainText(`VisCoder: stopped: ${reason}`);
  await expect(text).toContainText('last status: attempt 1 of 4: running the code...');
  await expect(output.locator('.jupyter-widgets')).toHaveCount(0);
  await expect(output.locator('.widget-error')).toHaveCount(0);
  await expect(output).not.toContainText('Error displaying widget');
  expect(await viscoderStates(vc.page, 1)).toEqual(['stopped']);
  // Still so once the new kernel is up (no late update of the old run puts the widget back).
  await vc.waitForKernelIdle();
  await vc.page.waitForTimeout(1000);
  await expect(text).toContainText(`VisCoder: stopped: ${reason}`);
  await expect(output.locator('.jupyter-widgets')).toHaveCount(0);
  const saved = (await vc.snapshot(name)) as { outputs: unknown[] }[];
  expect(JSON.stringify(saved[1].outputs)).not.toContain(WIDGET_VIEW);
}

test.describe('the kernel goes away during a %%viscoder run', () => {
  test('Kernel ▸ Restart: the output says the run stopped, no broken widget', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    const output = await startLongRun(vc, 'restart.ipynb');
    await vc.shot('r1-running', 'page');

    await page.menu.clickMenuItem('Kernel>Restart Kernel…');
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Restart');
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(dialog).toHaveCount(0);

    await expectStopped(vc, output, 'restart.ipynb', 'the kernel restarted');
    await vc.shot('r2-stopped-restart', 'page');
  });

  test('the kernel process is killed: the output says the kernel died', async ({ page, tmpPath }, testInfo) => {
    const vc = new VisCoderHelper(page, tmpPath, testInfo);
    const output = await startLongRun(vc, 'killed.ipynb');

    // SIGKILL the notebook's kernel (its command line names its connection file, kernel-<id>.json);
    // the server notices and starts a new one.
    const id: string = await page.evaluate(
      () => (window as any).jupyterapp.shell.currentWidget.sessionContext.session.kernel.id
    );
    const pids = execFileSync('pgrep', ['-f', `kernel-${id}.json`], { encoding: 'utf8' })
      .split('\n')
      .filter(Boolean)
      .map(Number);
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      process.kill(pid, 'SIGKILL');
    }

    await expectStopped(vc, output, 'killed.ipynb', 'the kernel died');
    await vc.shot('r3-stopped-died', 'page');
  });
});
