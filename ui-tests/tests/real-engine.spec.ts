/**
 * The sidebar with a real in-process model: the offline GGUF (Qwen2.5-Coder-0.5B-Instruct,
 * Q4_K_M, joined from PyPI parts by viscoder_jupyter.offline_model) on the `llamacpp` backend.
 *
 * The other sidebar tests use the replay backend, which streams on the event loop; a real
 * engine generates on another thread, which once made every sidebar request fail. Here the
 * notebook's kernel picks the engine with %config (the server's kernels default to replay) and
 * the sidebar sends no backend of its own, so the kernel's choice applies.
 *
 * run-ui-tests.sh passes the model file in VISCODER_OFFLINE_GGUF. Without it the test is
 * skipped, unless VISCODER_REQUIRE_OFFLINE_MODEL=1: then it fails.
 */
import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';

import { DEFAULT_WIDTH, recordFixRequests, SETUP, VisCoderHelper } from './helpers/VisCoderHelper';

const GGUF = process.env.VISCODER_OFFLINE_GGUF ?? '';
const REQUIRED = process.env.VISCODER_REQUIRE_OFFLINE_MODEL === '1';
const NOTE = 'make the bars horizontal';

/** A working bar chart (an image output, with its "Fix in VisCoder…" button). */
const BAR_CHART = [
  'import matplotlib.pyplot as plt',
  "totals = sales.groupby('region')['revenue'].sum()",
  'plt.bar(totals.index, totals.values)',
  "plt.title('Revenue by region')",
  'plt.show()'
].join('\n');

/** Which engines the kernel has loaded (viscoder_jupyter.backends keeps one per model). */
const ENGINES =
  "import viscoder_jupyter.backends as b\nprint('engines:', sorted({type(v).__name__ for v in b._instances.values()}))";

interface ISample {
  t: number;
  running: boolean;
  stream: number;
}

test('a real model (llama.cpp, offline GGUF): "Fix in VisCoder…" with a note streams, then proposes or says why not', async ({
  page,
  tmpPath
}, testInfo) => {
  const present = GGUF !== '' && fs.existsSync(GGUF);
  if (!present && REQUIRED) {
    throw new Error(
      `VISCODER_REQUIRE_OFFLINE_MODEL=1 but the offline GGUF is missing (VISCODER_OFFLINE_GGUF=${JSON.stringify(GGUF)}): ` +
        'install its parts and llama-cpp-python, see `python -m viscoder_jupyter.offline_model --gguf --print-path`.'
    );
  }
  test.skip(!present, 'no offline GGUF model (VISCODER_OFFLINE_GGUF unset or missing): run-ui-tests.sh says why');
  test.setTimeout(600_000);

  const requests = recordFixRequests(page);

  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  await vc.openNotebook('real-engine.ipynb', [
    [
      SETUP,
      '%load_ext viscoder_jupyter',
      // The server's kernels default to the replay backend (VISCODER_BACKEND): this notebook uses the model.
      "%config VisCoder.backend = 'llamacpp'",
      `%config VisCoder.model = ${JSON.stringify(GGUF)}`,
      '%config VisCoder.retries = 1'
    ].join('\n'),
    BAR_CHART,
    ENGINES
  ]);
  await vc.runCell(0);
  await vc.runCell(1);
  await expect((await vc.output(1)).locator('img')).toBeVisible();

  await (await vc.outputButton(1)).click();
  await expect(vc.note).toBeFocused();
  await vc.note.fill(NOTE);

  // The panel every 100 ms from the click on: running or not, and how much streamed text it shows.
  await page.evaluate(() => {
    const w = window as any;
    const t0 = performance.now();
    const samples: ISample[] = (w.__viscoderSamples = []);
    w.__viscoderTimer = setInterval(() => {
      const panel = document.querySelector('#viscoder-sidebar');
      samples.push({
        t: performance.now() - t0,
        running: !!panel?.querySelector('.jp-VisCoder-cancel'),
        stream: panel?.querySelector('.jp-VisCoder-stream')?.textContent?.length ?? 0
      });
    }, 100);
  });
  const clicked = Date.now();
  await vc.fixButton.click();

  // The reply appears while the model writes it, under "Attempt 1 of 2".
  const cancel = vc.sidebar.getByRole('button', { name: 'Cancel' });
  const stream = vc.sidebar.locator('.jp-VisCoder-stream');
  await expect(vc.sidebar.locator('.jp-VisCoder-log')).toContainText('Attempt 1 of 2: writing code', {
    timeout: 240_000
  });
  await expect(stream).toContainText(/\S/, { timeout: 240_000 });
  const firstText = Date.now() - clicked;
  await expect(cancel).toBeVisible();
  await vc.shot('m1-streaming');

  // Then a proposal, or "no working plot" with each attempt listed: never the error state.
  await expect(vc.proposal.or(vc.problem)).toBeVisible({ timeout: 480_000 });
  const done = Date.now() - clicked;
  const samples: ISample[] = await page.evaluate(() => {
    const w = window as any;
    clearInterval(w.__viscoderTimer);
    return w.__viscoderSamples;
  });
  await testInfo.attach('panel-samples', { body: JSON.stringify(samples), contentType: 'application/json' });

  // Streamed: the text grew step by step while the run was going, not in one piece at the end.
  const lengths = [...new Set(samples.filter(s => s.running && s.stream > 0).map(s => s.stream))];
  expect(lengths.length, `stream lengths seen while running: ${JSON.stringify(lengths)}`).toBeGreaterThanOrEqual(3);

  // The sidebar sent no engine of its own: the kernel's %config applied.
  expect(requests).toHaveLength(1);
  const sent = JSON.parse(/"settings":(\{[^{}]*\})/.exec(requests[0])![1]);
  expect(sent).not.toHaveProperty('backend');
  expect(sent).not.toHaveProperty('model');
  expect(JSON.parse(/"note":("(?:[^"\\]|\\.)*")/.exec(requests[0])![1])).toBe(NOTE);

  const log = vc.sidebar.locator('.jp-VisCoder-log');
  const attempts = await log.locator('.jp-VisCoder-log-attempt').count();
  let outcome: string;
  if (await vc.proposal.isVisible()) {
    await expect(vc.problem).toHaveCount(0);
    await expect(vc.proposal.locator('.jp-VisCoder-diff-line').first()).toBeVisible();
    expect(await vc.proposal.locator('.jp-VisCoder-diff-added, .jp-VisCoder-diff-removed').count()).toBeGreaterThan(0);
    await expect(vc.decision.getByRole('button', { name: 'Accept', exact: true })).toBeEnabled();
    // The done line says what the kernel checked of the figure.
    const doneLine = log.locator('.jp-VisCoder-log-done');
    await expect(doneLine).toHaveText(/^Checked after [12] attempts? \(.* s from the click\): ran and drew /);
    outcome = `proposal: ${await doneLine.textContent()}`;
    // The figures shown are those of the proposed code only (not also an earlier attempt's).
    const drew = /drew (\d+) figures?/.exec(outcome);
    const figures = vc.proposal.locator('img.jp-VisCoder-figure');
    if (drew) {
      await expect(figures).toHaveCount(Number(drew[1]));
    } else {
      expect(await figures.count()).toBeGreaterThan(0);
    }
    expect((await vc.sidebar.boundingBox())!.width).toBeGreaterThanOrEqual(DEFAULT_WIDTH - 5);
    await vc.shot('m2-proposal', 'sidebar');
    await vc.shot('m2-proposal-page', 'page', 'sidebar-real-model-proposal');
  } else {
    await expect(vc.problem).toHaveText(/^No working plot after ([12]) attempts?\. Last error: /);
    const tried = Number(/after (\d+) attempt/.exec((await vc.problem.textContent())!)![1]);
    // Each attempt is listed, each with the reason it failed.
    expect(attempts).toBe(tried);
    await expect(log.locator('.jp-VisCoder-log-failed')).toHaveCount(tried);
    await expect(log.locator('.jp-VisCoder-log-done')).toHaveText(
      `No working plot after ${tried} attempt${tried === 1 ? '' : 's'}.`
    );
    outcome = `no working plot: ${await vc.problem.textContent()}`;
    await vc.shot('m2-no-working-plot', 'sidebar');
  }
  await expect(cancel).toBeHidden();
  expect(await vc.cellSource(1)).toBe(BAR_CHART); // nothing written before the user decides

  const timing = `click to first streamed text ${(firstText / 1000).toFixed(1)} s, to the end ${(done / 1000).toFixed(1)} s, ${attempts} attempt(s)`;
  console.log(`VisCoder real engine: ${timing}; ${outcome}`);
  testInfo.annotations.push({ type: 'real-engine', description: `${timing}; ${outcome}` });

  // The kernel ran it on llama.cpp (and never loaded the replay backend of the server's default).
  if (await vc.proposal.isVisible()) {
    await vc.clickProposalButton('Discard');
  }
  await vc.runCell(2);
  await expect(await vc.output(2)).toContainText("engines: ['LlamaCppBackend']");
});
