/**
 * What the panel says stays true: a message about the cell or the kernel goes when the cell or
 * the kernel no longer matches it (issue 25, item 7). Real notebook and cell models; the panel
 * and the kernel bridge are stand-ins (harness.ts says why).
 */
import { afterEach, describe, expect, test } from 'vitest';

import { SidebarModel } from '../../sidebar/model';
import { BROKEN, FakeBridge, followingBrokenCell, INotebook } from './harness';

const FIXED = "plt.bar(df['region'], df['revenue'])\nplt.show()";
const BUSY = 'The kernel is busy running a cell. Wait for it to finish (or interrupt it), then click Fix again.';

let model: SidebarModel;
let nb: INotebook;
let bridge: FakeBridge;

afterEach(() => model?.dispose());

async function settle(): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, 0));
}

async function acceptFix(): Promise<void> {
  ({ model, nb, bridge } = followingBrokenCell());
  await model.fix();
  bridge.emit({ type: 'done', ok: true, code: FIXED, attempts: 1, seconds: 1, error: '', verified: 'drew 1 figure.' });
  model.accept();
}

describe('"Accepted" holds while the cell holds the fix', () => {
  test('undo in the cell (Ctrl+Z) takes the notice away', async () => {
    await acceptFix();
    expect(model.notice).toMatch(/^Accepted: the cell now holds the fix/);
    nb.cell(1).sharedModel.undo();
    expect(nb.cell(1).sharedModel.getSource()).toBe(BROKEN);
    expect(model.notice).toBeNull();
  });

  test('an edit of the accepted code takes it away too; the note stays cleared', async () => {
    await acceptFix();
    const shared = nb.cell(1).sharedModel;
    shared.updateSource(FIXED.length, FIXED.length, '\nplt.title("mine")');
    expect(model.notice).toBeNull();
  });

  test('a change that leaves the fix in place keeps it (the cell still holds the fix)', async () => {
    await acceptFix();
    nb.cell(1).sharedModel.setMetadata({ tags: ['plot'] });
    expect(model.notice).toMatch(/^Accepted/);
  });
});

describe('"The kernel is busy" holds while the kernel is', () => {
  test('goes once the kernel reports a new status and is ready', async () => {
    ({ model, nb, bridge } = followingBrokenCell());
    bridge.problemText = BUSY;
    await model.fix();
    expect(model.problem).toBe(BUSY);
    expect(bridge.sent).toEqual([]);

    bridge.problemText = null; // the cell finished: idle
    bridge.kernelStatus.emit();
    await settle();
    expect(model.problem).toBeNull();
    expect(model.phase).toBe('idle');
  });

  test('stays while the kernel is still busy, and follows a new state of the kernel', async () => {
    ({ model, nb, bridge } = followingBrokenCell());
    bridge.problemText = BUSY;
    await model.fix();
    bridge.kernelStatus.emit();
    await settle();
    expect(model.problem).toBe(BUSY);

    bridge.problemText = 'The kernel is starting; try again once it is idle.';
    bridge.kernelStatus.emit();
    await settle();
    expect(model.problem).toBe('The kernel is starting; try again once it is idle.');
  });

  test('a run’s own failure is not about the kernel’s state: a status change keeps it', async () => {
    ({ model, nb, bridge } = followingBrokenCell());
    await model.fix();
    bridge.emit({ type: 'error', reason: 'no_frames', message: 'No DataFrame in the cell.' });
    bridge.kernelStatus.emit();
    await settle();
    expect(model.problem).toBe('No DataFrame in the cell.');
  });
});

describe('"Sending the cell to the kernel…" ends with the run', () => {
  test('an error right after sending replaces the line', async () => {
    ({ model, nb, bridge } = followingBrokenCell());
    await model.fix();
    expect(model.log.map(line => line.text)).toEqual(['Sending the cell to the kernel…']);
    bridge.emit({ type: 'error', reason: 'bad_request', message: 'The request was refused: the note is too long.' });
    expect(model.problem).toBe('The request was refused: the note is too long.');
    expect(model.log).toEqual([]);
  });

  test('an error after progress drops the step in progress and keeps what happened', async () => {
    ({ model, nb, bridge } = followingBrokenCell());
    await model.fix();
    bridge.emit({ type: 'attempt', number: 1, of: 3 });
    bridge.emit({ type: 'attempt_failed', number: 1, code: BROKEN, ename: 'KeyError', evalue: "'revenu'", error: '' });
    bridge.emit({ type: 'status', message: 'loading the model' });
    bridge.emit({ type: 'error', reason: 'backend', message: 'The model could not be loaded.' });
    expect(model.log.map(line => line.text)).toEqual([
      'Sending the cell to the kernel…',
      'Attempt 1 of 3: writing code…',
      "Attempt 1 failed: 'revenu'"
    ]);
  });

  test('a lost kernel, too', async () => {
    ({ model, nb, bridge } = followingBrokenCell());
    await model.fix();
    bridge.lost.emit('The kernel is restarting; the fix in progress was stopped.');
    expect(model.log).toEqual([]);
    expect(model.problem).toMatch(/restarting/);
  });
});

describe('a fix that stops while the user is on another cell', () => {
  test('the panel moves on to that cell and says how the fix ended', async () => {
    ({ model, nb, bridge } = followingBrokenCell('time.sleep(60)'));
    await model.fix();
    model.follow(nb.panel, nb.cell(2).id); // the user runs a long cell below meanwhile
    expect(model.cellId).toBe(nb.cell(1).id);
    await model.cancel();
    bridge.emit({ type: 'cancelled' });
    expect(model.cellId).toBe(nb.cell(2).id);
    expect(model.notice).toBe('Cell #2: Cancelled: the model and the child kernel were stopped; nothing was changed.');
    expect(model.problem).toBeNull(); // nothing is wrong with this cell
  });
});
