/**
 * The sidebar's model as the user sees it: a fix runs, proposes, is accepted, inserted or
 * discarded, is cancelled or fails; the model stays on its cell meanwhile. Real notebook and cell
 * models; the notebook panel and the kernel bridge are stand-ins (harness.ts says why).
 */
import { afterEach, describe, expect, test } from 'vitest';

import { SidebarModel } from '../../sidebar/model';
import { addError, BROKEN, FakeBridge, followingBrokenCell, INotebook, SETTINGS } from './harness';

const FIXED = "plt.bar(df['region'], df['revenue'])\nplt.show()";

let model: SidebarModel;
let nb: INotebook;
let bridge: FakeBridge;

/** A sidebar on cell 1 of a fresh notebook whose cell 1 failed with a KeyError. */
function setUp(): void {
  ({ model, nb, bridge } = followingBrokenCell('print(1)'));
}

/** Run a fix to a proposal of FIXED after two attempts, the first failing. */
async function propose(): Promise<void> {
  await model.fix();
  bridge.emit({ type: 'attempt', number: 1, of: 3 });
  bridge.emit({ type: 'attempt_failed', number: 1, code: BROKEN, ename: 'KeyError', evalue: "'revenu'", error: 'tb' });
  bridge.emit({ type: 'attempt', number: 2, of: 3 });
  bridge.emit({ type: 'text', number: 2, text: FIXED });
  bridge.emit({ type: 'figure', number: 2, png: 'PNG2' });
  bridge.emit({
    type: 'done',
    ok: true,
    code: FIXED,
    attempts: 2,
    seconds: 1.5,
    error: '',
    verified: 'drew 1 figure.'
  });
}

afterEach(() => model?.dispose());

describe('SidebarModel: following cells', () => {
  test('shows the active code cell, its source and its last error without ANSI colours', () => {
    setUp();
    expect(model.phase).toBe('idle');
    expect(model.cellId).toBe(nb.cell(1).id);
    expect(model.cellIndex).toBe(1);
    expect(model.source).toBe(BROKEN);
    expect(model.error).toEqual({
      ename: 'KeyError',
      evalue: "'revenu'",
      traceback: "---------------------------------------------------------\nKeyError: 'revenu'"
    });
  });

  test('tells the view when the cell is edited', () => {
    setUp();
    let changes = 0;
    model.changed.connect(() => changes++);
    nb.cell(1).sharedModel.setSource('x = 1');
    expect(changes).toBeGreaterThan(0);
    expect(model.source).toBe('x = 1');
  });

  test('moving to another cell starts clean: no note, no notice', () => {
    setUp();
    model.note = 'use a log scale';
    model.follow(nb.panel, nb.cell(2).id);
    expect(model.cellId).toBe(nb.cell(2).id);
    expect(model.note).toBe('');
    expect(model.error).toBeNull();
  });
});

describe('SidebarModel: a fix', () => {
  test('sends the cell, its traceback, the trimmed note and the settings', async () => {
    setUp();
    model.note = '  horizontal bars  ';
    await model.fix();
    expect(model.phase).toBe('running');
    expect(model.log[0].text).toBe('Sending the cell to the kernel…');
    expect(bridge.sent).toHaveLength(1);
    const request = bridge.request;
    expect(request).toMatchObject({
      type: 'fix',
      source: BROKEN,
      traceback: "---------------------------------------------------------\nKeyError: 'revenu'",
      note: 'horizontal bars',
      settings: SETTINGS
    });
    expect(request.id).not.toBe('');
  });

  test('logs the kernel’s progress and streams the code being written', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'status', message: 'loading the model' });
    bridge.emit({ type: 'attempt', number: 1, of: 3 });
    bridge.emit({ type: 'text', number: 1, text: 'plt.' });
    bridge.emit({ type: 'text', number: 1, text: 'bar()' });
    expect(model.stream).toBe('plt.bar()');
    bridge.emit({
      type: 'attempt_failed',
      number: 1,
      code: 'plt.bar()',
      ename: 'TypeError',
      evalue: 'missing x',
      error: 'tb'
    });
    bridge.emit({ type: 'attempt', number: 2, of: 3 });
    expect(model.stream).toBe(''); // a new attempt writes afresh
    expect(model.log.map(line => [line.kind, line.text])).toEqual([
      ['status', 'Sending the cell to the kernel…'],
      ['status', 'Loading the model…'],
      ['attempt', 'Attempt 1 of 3: writing code…'],
      ['failed', 'Attempt 1 failed: missing x'],
      ['attempt', 'Attempt 2 of 3: writing code…']
    ]);
    expect(model.log[3].detail).toBe('tb');
  });

  test('a working attempt becomes a proposal, with what was checked of its figure', async () => {
    setUp();
    await propose();
    expect(model.phase).toBe('proposed');
    expect(model.proposal).toMatchObject({
      code: FIXED,
      attempts: 2,
      seconds: 1.5,
      figures: ['PNG2'],
      verified: 'drew 1 figure'
    });
    expect(model.log.at(-1)?.text).toMatch(/^Checked after 2 attempts \(\d+\.\d s from the click\): drew 1 figure\.$/);
    expect(model.source).toBe(BROKEN); // nothing written before the user decides
  });

  test('a proposal without a check says that nothing is known of the figure', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'done', ok: true, code: FIXED, attempts: 1, seconds: 1, error: '' });
    expect(model.log.at(-1)?.text).toMatch(
      /^Ran without error after 1 attempt \(.*\); nothing is known of the figure\.$/
    );
  });

  test('the proposal shows the figure of the proposed attempt, not of an earlier one', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'figure', number: 1, png: 'VERTICAL' });
    bridge.emit({
      type: 'attempt_failed',
      number: 1,
      code: 'plt.bar()',
      ename: 'E',
      evalue: 'not horizontal',
      error: ''
    });
    bridge.emit({ type: 'figure', number: 2, png: 'HORIZONTAL' });
    bridge.emit({ type: 'done', ok: true, code: 'plt.barh()', attempts: 2, seconds: 1, error: '' });
    expect(model.proposal?.figures).toEqual(['HORIZONTAL']);
  });

  test('the proposal shows the figures of the attempt that passed, not of a later one that failed', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'figure', number: 1, png: 'PASSED-1' });
    bridge.emit({ type: 'figure', number: 1, png: 'PASSED-2' });
    bridge.emit({ type: 'figure', number: 2, png: 'FAILED' });
    bridge.emit({
      type: 'attempt_failed',
      number: 2,
      code: 'plt.pie()',
      ename: 'E',
      evalue: 'check failed',
      error: ''
    });
    bridge.emit({ type: 'done', ok: true, code: 'plt.barh()', attempts: 2, seconds: 1, error: '' });
    expect(model.proposal?.figures).toEqual(['PASSED-1', 'PASSED-2']);
  });

  test('when no attempt passed, the figures of the proposed code, not of the last attempt', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'figure', number: 1, png: 'PROPOSED' });
    bridge.emit({
      type: 'attempt_failed',
      number: 1,
      code: 'plt.barh()',
      ename: 'E',
      evalue: 'check failed',
      error: ''
    });
    bridge.emit({ type: 'figure', number: 2, png: 'LAST' });
    bridge.emit({
      type: 'attempt_failed',
      number: 2,
      code: 'plt.pie()',
      ename: 'E',
      evalue: 'check failed',
      error: ''
    });
    bridge.emit({ type: 'done', ok: true, code: 'plt.barh()', attempts: 2, seconds: 1, error: '' });
    expect(model.proposal?.figures).toEqual(['PROPOSED']);
  });

  test('no working plot: back to idle, with the last error said plainly', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'done', ok: false, code: '', attempts: 3, seconds: 4, error: 'NameError: df' });
    expect(model.phase).toBe('idle');
    expect(model.proposal).toBeNull();
    expect(model.problem).toBe('No working plot after 3 attempts. Last error: NameError: df');
  });

  test('a kernel error ends the run with its message', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'error', reason: 'busy', message: 'A fix is already running in this kernel.' });
    expect(model.phase).toBe('idle');
    expect(model.problem).toBe('A fix is already running in this kernel.');
  });

  test('a refused start (no kernel) sends nothing and says why', async () => {
    setUp();
    bridge.problemText = 'The notebook has no running kernel.';
    await model.fix();
    expect(bridge.sent).toEqual([]);
    expect(model.phase).toBe('idle');
    expect(model.problem).toBe('The notebook has no running kernel.');
    expect(model.log).toEqual([]);
  });

  test('a failed send ends the run with its reason', async () => {
    setUp();
    bridge.sendError = new Error('The comm could not be opened.');
    await model.fix();
    expect(model.phase).toBe('idle');
    expect(model.problem).toBe('The comm could not be opened.');
  });

  test('a lost kernel ends the run', async () => {
    setUp();
    await model.fix();
    bridge.lost.emit('The kernel restarted.');
    expect(model.phase).toBe('idle');
    expect(model.problem).toBe('The kernel restarted.');
  });

  test('messages of another run, and after the run, change nothing', async () => {
    setUp();
    await model.fix();
    bridge.received.emit({ type: 'error', id: 'another-run', reason: 'internal', message: 'not ours' });
    expect(model.phase).toBe('running');
    bridge.emit({ type: 'done', ok: true, code: FIXED, attempts: 1, seconds: 1, error: '' });
    bridge.emit({ type: 'error', reason: 'internal', message: 'late' });
    expect(model.phase).toBe('proposed');
    expect(model.problem).toBeNull();
  });

  test('a second fix while one runs is ignored', async () => {
    setUp();
    await model.fix();
    await model.fix();
    expect(bridge.sent).toHaveLength(1);
  });
});

describe('SidebarModel: cancel', () => {
  test('asks the kernel to cancel this run, then says it was cancelled', async () => {
    setUp();
    await model.fix();
    await model.cancel();
    expect(bridge.sent.at(-1)).toEqual({ type: 'cancel', id: bridge.request.id });
    expect(model.phase).toBe('running'); // until the kernel confirms
    expect(model.log.at(-1)?.text).toBe('Cancelling: stopping the model and the child kernel…');
    bridge.emit({ type: 'cancelled' });
    expect(model.phase).toBe('idle');
    expect(model.problem).toBe('Cancelled: the model and the child kernel were stopped; nothing was changed.');
    expect(model.source).toBe(BROKEN);
  });

  test('does nothing when no fix runs', async () => {
    setUp();
    await model.cancel();
    expect(bridge.sent).toEqual([]);
  });
});

describe('SidebarModel: deciding on a proposal', () => {
  test('Accept writes the fix into the cell, as one undo step', async () => {
    setUp();
    model.note = 'fix the column';
    await propose();
    model.accept();
    expect(model.phase).toBe('idle');
    expect(nb.cell(1).sharedModel.getSource()).toBe(FIXED);
    expect(model.notice).toMatch(/^Accepted: the cell now holds the fix/);
    expect(model.note).toBe('');
    expect(model.proposal).toBeNull();
    nb.cell(1).sharedModel.undo();
    expect(nb.cell(1).sharedModel.getSource()).toBe(BROKEN);
  });

  test('undo after Accept keeps the user’s last keystrokes (not merged into the fix’s step)', async () => {
    setUp();
    await propose();
    const shared = nb.cell(1).sharedModel;
    shared.updateSource(BROKEN.length, BROKEN.length, '  # mine');
    model.accept();
    shared.undo();
    expect(shared.getSource()).toBe(BROKEN + '  # mine');
  });

  test('after Accept the old traceback is hidden until the code is restored or the cell runs', async () => {
    setUp();
    await propose();
    model.accept();
    expect(model.error).toBeNull(); // it belongs to the replaced code
    nb.cell(1).sharedModel.undo();
    expect(model.error?.ename).toBe('KeyError');
    nb.cell(1).sharedModel.setSource(FIXED);
    expect(model.error).toBeNull();
    nb.cell(1).outputs.clear();
    addError(nb.cell(1), 'ValueError', 'new');
    expect(model.error?.ename).toBe('ValueError'); // the cell ran again: its own error
  });

  test('Insert below adds the fix as a new cell and leaves the cell as it was', async () => {
    setUp();
    await propose();
    model.insertBelow();
    expect(nb.model.cells.length).toBe(4);
    expect(nb.cell(1).sharedModel.getSource()).toBe(BROKEN);
    expect(nb.cell(2).sharedModel.getSource()).toBe(FIXED);
    expect(nb.cell(2).getMetadata('viscoder')).toEqual({ fixed_from: nb.cell(1).id });
    expect(nb.panel.content.activeCellIndex).toBe(2);
    expect(model.notice).toBe('Inserted the fix as a new cell below.');
    expect(model.phase).toBe('idle');
  });

  test('Discard leaves the notebook unchanged', async () => {
    setUp();
    const before = JSON.stringify(nb.model.toJSON());
    await propose();
    model.discard();
    expect(JSON.stringify(nb.model.toJSON())).toBe(before);
    expect(model.phase).toBe('idle');
    expect(model.notice).toBe('Discarded: the notebook was not changed.');
  });

  test('Accept on a deleted cell changes nothing and says so', async () => {
    setUp();
    await propose();
    nb.model.sharedModel.deleteCell(1);
    model.accept();
    expect(model.phase).toBe('idle');
    expect(model.notice).toBe('The cell is gone; nothing was changed.');
    expect(nb.model.cells.length).toBe(2);
  });
});

describe('SidebarModel: staying on its cell', () => {
  test('while a fix runs or waits, it stays on its cell and moves on after the decision', async () => {
    setUp();
    await model.fix();
    model.follow(nb.panel, nb.cell(2).id);
    expect(model.cellId).toBe(nb.cell(1).id);
    bridge.emit({ type: 'done', ok: true, code: FIXED, attempts: 1, seconds: 1, error: '' });
    model.follow(nb.panel, nb.cell(0).id);
    expect(model.cellId).toBe(nb.cell(1).id);
    model.discard();
    expect(model.cellId).toBe(nb.cell(0).id);
    expect(model.notice).toBe('Discarded: the notebook was not changed.'); // what happened to the cell before
  });

  test('after Accept it stays on the accepted cell', async () => {
    setUp();
    await propose();
    model.follow(nb.panel, nb.cell(2).id);
    model.accept();
    expect(model.cellId).toBe(nb.cell(1).id);
  });

  test('a button on another cell discards the waiting proposal and shows that cell', async () => {
    setUp();
    await propose();
    model.show(nb.panel, nb.cell(2).id);
    expect(model.cellId).toBe(nb.cell(2).id);
    expect(model.phase).toBe('idle');
    expect(model.notice).toBe('The proposal for the other cell was discarded; nothing was changed.');
    expect(nb.cell(1).sharedModel.getSource()).toBe(BROKEN);
  });

  test('a button on the same cell keeps the waiting proposal', async () => {
    setUp();
    await propose();
    model.show(nb.panel, nb.cell(1).id);
    expect(model.phase).toBe('proposed');
  });

  test('running the cell again clears what the panel said about the last fix, but keeps the note', async () => {
    setUp();
    await propose();
    model.discard();
    model.note = 'log scale';
    nb.cell(1).outputs.clear();
    expect(model.notice).toBeNull();
    expect(model.log).toEqual([]);
    expect(model.note).toBe('log scale');
  });

  test('running the cell while a fix runs keeps the fix’s log', async () => {
    setUp();
    await model.fix();
    bridge.emit({ type: 'attempt', number: 1, of: 3 });
    nb.cell(1).outputs.clear();
    expect(model.log).toHaveLength(2);
    expect(model.phase).toBe('running');
  });
});

test('a disposed model no longer follows its kernel', async () => {
  setUp();
  await model.fix();
  let changes = 0;
  model.changed.connect(() => changes++);
  model.dispose();
  bridge.emit({ type: 'status', message: 'still here' });
  expect(model.isDisposed).toBe(true);
  expect(changes).toBe(0);
});
