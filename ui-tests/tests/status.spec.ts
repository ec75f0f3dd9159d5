/**
 * The kernel status while %%viscoder runs: busy for the whole first run in a fresh kernel, idle after.
 *
 * The run uses a real in-process engine (a tiny random transformers model, built by
 * tests/tiny_model.py), so it loads the model and streams a reply into the widget view. In a
 * fresh kernel that view's first ipywidget makes JupyterLab ask the kernel for a subshell
 * (create_subshell_request, on the control channel) mid-run; the kernel's busy/idle around that
 * request used to turn the status to Idle one second into the run (viscoder_jupyter/kernel_status.py).
 */
import { expect, test } from '@jupyterlab/galata';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

import { VisCoderHelper } from './helpers/VisCoderHelper';

const REPO = path.join(__dirname, '..', '..');
const PYTHON = process.env.PYTHON ?? path.join(REPO, '.venv', 'bin', 'python');
const MODEL = process.env.VISCODER_TINY_MODEL ?? path.join(os.tmpdir(), 'viscoder-ui-tiny-model');
const SAMPLE_MS = 250;

interface ISample {
  t: number;
  status: string;
  bar: string;
}

interface IMessage {
  t: number;
  direction: string;
  channel: string;
  type: string;
  id: string;
  parentType?: string;
  parentId?: string;
  state?: string;
  code?: string;
}

test.beforeAll(() => {
  if (!fs.existsSync(path.join(MODEL, 'model.safetensors'))) {
    execFileSync(PYTHON, [path.join(REPO, 'tests', 'tiny_model.py'), MODEL], { stdio: 'inherit', timeout: 240_000 });
  }
});

test('the kernel status stays busy for the whole first %%viscoder run, and goes idle after', async ({
  page,
  tmpPath
}, testInfo) => {
  const vc = new VisCoderHelper(page, tmpPath, testInfo);
  await vc.openNotebook('status.ipynb', [
    [
      '%load_ext viscoder_jupyter',
      // The server's kernels default to the replay backend: this run uses a real engine.
      "%config VisCoder.backend = 'transformers'",
      `%config VisCoder.model = ${JSON.stringify(MODEL)}`,
      '%config VisCoder.max_new_tokens = 2000', // seconds of writing: an idle machine ran 200 tokens x2 in 0.6 s, before the test looked
      '%config VisCoder.retries = 1'
    ].join('\n'),
    "import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3], 'b': [4.0, 5.0, 6.0]})",
    '%%viscoder df\nbar chart of b by a'
  ]);
  await vc.runCell(0);
  await vc.runCell(1);
  await vc.waitForKernelIdle();

  // From here on: the kernel's status every 250 ms (the session's and the status bar's text), and
  // every status message and request with its parent.
  await page.evaluate(sampleMs => {
    const w = window as any;
    const kernel = w.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
    const t0 = performance.now();
    const record: { samples: ISample[]; messages: IMessage[] } = (w.__viscoderStatus = { samples: [], messages: [] });
    kernel.anyMessage.connect((_: unknown, { msg, direction }: any) => {
      const type = msg.header.msg_type;
      if (direction === 'send' || type === 'status' || type === 'execute_reply') {
        record.messages.push({
          t: performance.now() - t0,
          direction,
          channel: msg.channel,
          type,
          id: msg.header.msg_id,
          parentType: msg.parent_header?.msg_type,
          parentId: msg.parent_header?.msg_id,
          state: msg.content?.execution_state,
          code: typeof msg.content?.code === 'string' ? msg.content.code.split('\n')[0] : undefined
        });
      }
    });
    const bar = () =>
      document.querySelector('#jp-main-statusbar .jp-StatusBar-TextItem[title^="Change kernel"]')?.textContent ?? '';
    w.__viscoderStatusTimer = setInterval(
      () => record.samples.push({ t: performance.now() - t0, status: kernel.status, bar: bar() }),
      sampleMs
    );
  }, SAMPLE_MS);

  await page.notebook.runCell(2, { inplace: true, wait: false });
  // Mid-run: the live view writes the first attempt and the status bar says Busy; a picture of the
  // lab then for the docs (docs/screenshots/status-bar-during-run.png, with VISCODER_DOCS_SCREENSHOTS=1).
  const bar = page.locator('#jp-main-statusbar .jp-StatusBar-TextItem[title^="Change kernel"]');
  const output = await vc.output(2);
  await expect(output.locator('.jupyter-widgets').first()).toContainText(/attempt 1 of 2/, { timeout: 240_000 });
  await expect(bar).toHaveText(/\| Busy$/);
  await vc.shot('status-bar-during-run', 'page', 'status-bar-during-run');
  await expect(bar).toHaveText(/\| Busy$/); // still running when the picture was taken
  // The run's end: the kernel's reply to the cell (model loading and two attempts, under a minute or two).
  await page.waitForFunction(
    () => {
      const { messages } = (window as any).__viscoderStatus as { messages: IMessage[] };
      const request = messages.find(m => m.type === 'execute_request' && m.code?.startsWith('%%viscoder'));
      return !!request && messages.some(m => m.type === 'execute_reply' && m.parentId === request.id);
    },
    undefined,
    { timeout: 280_000, polling: 500 }
  );
  await page.waitForTimeout(4 * SAMPLE_MS);
  const { samples, messages } = await page.evaluate(() => {
    const w = window as any;
    clearInterval(w.__viscoderStatusTimer);
    return w.__viscoderStatus as { samples: ISample[]; messages: IMessage[] };
  });
  await testInfo.attach('status-log', {
    body: JSON.stringify({ samples, messages }, null, 1),
    contentType: 'application/json'
  });

  const request = messages.find(m => m.type === 'execute_request' && m.code?.startsWith('%%viscoder'))!;
  const ofRequest = (state: string) =>
    messages.find(m => m.type === 'status' && m.parentId === request.id && m.state === state)!;
  const busyAt = ofRequest('busy').t;
  const idleAt = ofRequest('idle').t;
  const strays = messages.filter(m => m.type === 'status' && m.parentId !== request.id && m.t > busyAt && m.t < idleAt);
  const sent = messages.filter(m => m.direction === 'send' && m.t > busyAt && m.t < idleAt);
  console.log(
    `VisCoder: run ${((idleAt - busyAt) / 1000).toFixed(1)} s; sent meanwhile: ${sent.map(m => `${m.channel}:${m.type}`).join(', ') || 'nothing'}; ` +
      `other statuses meanwhile: ${strays.map(m => `${m.state} (${m.parentType})`).join(', ') || 'none'}`
  );

  const during = samples.filter(s => s.t > busyAt && s.t < idleAt);
  expect(during.length).toBeGreaterThan(8); // the run lasted a few seconds at least
  const notBusy = during.filter(s => s.status !== 'busy');
  expect(notBusy, `not busy during the run; statuses of other requests meanwhile: ${JSON.stringify(strays)}`).toEqual(
    []
  );
  // The status bar says so too (it redraws a moment after the status changes).
  expect(during.filter(s => s.t > busyAt + 1000 && !s.bar.endsWith('| Busy'))).toEqual([]);

  // The run really went through the engine, and the kernel is idle after it.
  await expect(await vc.output(2)).toContainText(/VisCoder: .* after 2 attempts \(.*loading\)/);
  const after = samples.filter(s => s.t > idleAt + 2 * SAMPLE_MS);
  expect(after.length).toBeGreaterThan(0);
  expect(after.every(s => s.status === 'idle')).toBe(true);
  await vc.waitForKernelIdle();
});
