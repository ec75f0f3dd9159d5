/**
 * A saved notebook shows each %%viscoder run's record after a reload, where the live view
 * (ipywidgets, gone with the kernel's session) would read "Error displaying widget: model not
 * found": when a run ends, the live view's place holds static HTML and text
 * (viscoder_jupyter/frontends/progress.py, WidgetProgress.finish).
 */
import { expect, test } from '@jupyterlab/galata';

import { SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

const WIDGET_VIEW = 'application/vnd.jupyter.widget-view+json';
/** The server's kernels replay replies/fix.jsonl: a KeyError, then a working bar chart. */
const LAST_LINE = 'after 2 attempts';

test('a saved %%viscoder run shows its record after a reload, not a missing widget', async ({
  page,
  tmpPath
}, testInfo) => {
  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  await vc.openNotebook('saved-record.ipynb', [
    `${SETUP}\n%load_ext viscoder_jupyter`,
    '%%viscoder sales\nbar chart of revenue by region'
  ]);
  await vc.runCell(0);
  await vc.runCell(1);
  const output = await vc.output(1);
  await expect(output.locator('.viscoder-record')).toContainText(LAST_LINE, { timeout: 120_000 });
  await expect(output.locator('.viscoder-record details summary').first()).toContainText('attempt 1: KeyError');
  await expect(output.locator('.jupyter-widgets')).toHaveCount(0);
  const saved = (await vc.snapshot('saved-record.ipynb')) as { outputs: unknown[] }[];
  expect(JSON.stringify(saved[1].outputs)).not.toContain(WIDGET_VIEW);
  await page.notebook.save();

  // A reload: the page comes back without the kernel's widget models.
  // (Galata's own readiness check waits for the Launcher, which a restored layout need not show;
  // the notebook is opened with JupyterLab's own command, whether or not the layout restored it.)
  await page.reload({ waitForIsReady: false });
  await page.locator('#jupyterlab-splash').waitFor({ state: 'detached' });
  await page.evaluate(async path => {
    await (window as any).jupyterapp.commands.execute('docmanager:open', { path });
  }, `${tmpPath}/saved-record.ipynb`);
  const reloaded = page.locator('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell').nth(1).locator('.jp-Cell-outputArea');
  await expect(reloaded.locator('.viscoder-record')).toContainText(LAST_LINE);
  await expect(reloaded.locator('.viscoder-record details summary').first()).toContainText('attempt 1: KeyError');
  await expect(reloaded).not.toContainText('Error displaying widget');
  await vc.shot('saved-record-after-reload', 'page', 'saved-record-after-reload');
});
