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
  await vc.shot('r1-flagged-proposal');

  await review.getByRole('checkbox').check();
  await expect(accept).toBeEnabled();
  await vc.clickProposalButton('Accept');
  expect(await vc.cellSource(1)).toContain("sales.to_csv('backup.csv')");
});
