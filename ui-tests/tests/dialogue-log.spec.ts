/**
 * The dialogue log (VisCoder.collect) in a real JupyterLab: a fix from the sidebar is logged by
 * the kernel, and the button the user presses on the proposal is logged as its verdict.
 * The replay backend answers (ui-tests/replies/fix.jsonl: a KeyError, then a working plot).
 */
import { expect, test } from '@jupyterlab/galata';

import { BROKEN_PLOT, SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

/** The log's lines as kind:origin (a dialogue) or kind:verdict, printed by the user's kernel. */
const READ_LOG = [
  'import json',
  "entries = [json.loads(line) for line in open('dialogues.jsonl')]",
  "print(' '.join(e['kind'] + ':' + (e['verdict'] if e['kind'] == 'verdict' else e['origin']) for e in entries))"
].join('\n');

test('the sidebar verdict on a fix is logged with its dialogue', async ({ page, tmpPath }, testInfo) => {
  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  // The log goes next to the notebook (the kernel's working folder).
  const collect =
    "%load_ext viscoder_jupyter\n%config VisCoder.collect = True\n%config VisCoder.collect_path = 'dialogues.jsonl'";
  await vc.openNotebook('dialogue-log.ipynb', [`${SETUP}\n${collect}`, BROKEN_PLOT, READ_LOG]);
  await vc.runCell(0);
  await vc.runCell(1);
  await (await vc.outputButton(1)).click();
  await expect(vc.sidebar).toBeVisible();
  await vc.fixAndWaitForProposal();
  await vc.clickProposalButton('Accept');
  expect(await vc.cellSource(1)).toContain("groupby('region')");

  // The verdict travels on the comm after the click: read the log until it is there.
  await expect
    .poll(
      async () => {
        await vc.runCell(2);
        return (await (await vc.output(2)).innerText()).trim();
      },
      { timeout: 60_000 }
    )
    .toBe('dialogue:sidebar verdict:accepted');
});
