/**
 * A fix the review of generated code flags (viscoder_jupyter/core/code_review.py), in a real
 * JupyterLab: the panel names the flagged line, and Accept waits for "I read it". The replay
 * backend answers with code that also writes a file (ui-tests/replies/flagged.jsonl), twice.
 */
import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

import { BROKEN_PLOT, SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

const FLAGGED_REPLIES = path.join(
  process.env.VISCODER_UI_REPLIES ?? path.join(__dirname, '..', 'replies'),
  'flagged.jsonl'
);

test('(r) a flagged fix: the line and why are shown, Accept waits for "I read it"', async ({
  page,
  tmpPath
}, testInfo) => {
  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  await vc.openNotebook('flagged.ipynb', [
    `${SETUP}\n%load_ext viscoder_jupyter\n%config VisCoder.replay = ${JSON.stringify(FLAGGED_REPLIES)}`,
    BROKEN_PLOT
  ]);
  await vc.runCell(0);
  await vc.runCell(1);
  await (await vc.outputButton(1)).click();
  await vc.fixAndWaitForProposal();

  // The finding was fed back once (attempt 1), and the answer still holds it.
  const log = vc.sidebar.locator('.jp-VisCoder-log');
  await expect(log.locator('.jp-VisCoder-log-failed').first()).toContainText(
    "Attempt 1 failed: FlaggedCode: Do not use `sales.to_csv('backup.csv')`"
  );
  const review = vc.sidebar.locator('.jp-VisCoder-review');
  await expect(review).toContainText('Read this code before you use it');
  await expect(review).toContainText(
    "Line 2: sales.to_csv('backup.csv') calls .to_csv(...) with a destination: it writes a file"
  );
  await expect(vc.proposal.locator('.jp-VisCoder-diff-flagged')).toHaveText(/sales\.to_csv\('backup\.csv'\)/);

  const accept = vc.decision.getByRole('button', { name: 'Accept', exact: true });
  const insert = vc.decision.getByRole('button', { name: 'Insert below', exact: true });
  await expect(accept).toBeDisabled();
  await expect(insert).toBeDisabled();
  // The findings and their tick box come right under the proposal's header, above the diff and
  // the figure: the user meets them before Accept, without scrolling past the plot.
  const figure = vc.proposal.locator('.jp-VisCoder-figure').first();
  await expect(figure).toBeVisible();
  const reviewBox = (await review.boundingBox())!;
  const headerBox = (await vc.proposal.locator('h3', { hasText: 'Proposed fix' }).boundingBox())!;
  const figureBox = (await figure.boundingBox())!;
  expect(reviewBox.y).toBeGreaterThanOrEqual(headerBox.y + headerBox.height);
  expect(reviewBox.y + reviewBox.height).toBeLessThanOrEqual(figureBox.y);
  expect(reviewBox.y + reviewBox.height).toBeLessThanOrEqual(
    (await vc.proposal.locator('.jp-VisCoder-diff').boundingBox())!.y
  );
  // A disabled Accept looks disabled (JupyterLab's jp-mod-disabled, dimmed, not blue) and says why.
  const look = (button: typeof accept) =>
    button.evaluate(node => {
      const style = getComputedStyle(node);
      return { background: style.backgroundColor, opacity: style.opacity, cursor: style.cursor };
    });
  await expect(accept).toHaveClass(/\bjp-mod-disabled\b/);
  await expect(accept).toHaveAttribute('title', "Tick 'I read it' first");
  await expect(insert).toHaveAttribute('title', "Tick 'I read it' first");
  const disabledLook = await look(accept);
  expect(disabledLook.cursor).toBe('not-allowed');
  expect(Number(disabledLook.opacity)).toBeLessThan(1);
  await vc.shot('r1-flagged-proposal');

  await review.getByRole('checkbox').check();
  await expect(accept).toBeEnabled();
  await expect(accept).not.toHaveClass(/\bjp-mod-disabled\b/);
  await expect(accept).not.toHaveAttribute('title', /./);
  const enabledLook = await look(accept);
  expect(enabledLook.cursor).not.toBe('not-allowed');
  expect(Number(enabledLook.opacity)).toBe(1);
  expect(disabledLook.background).not.toBe(enabledLook.background);
  await vc.clickProposalButton('Accept');
  expect(await vc.cellSource(1)).toContain("sales.to_csv('backup.csv')");
});
