/**
 * The button the user presses on a proposal goes to the kernel as a `verdict` (its dialogue log
 * records it when VisCoder.collect is on). Real notebook and cell models; the panel and the
 * kernel bridge are stand-ins (harness.ts says why).
 */
import { afterEach, describe, expect, test } from 'vitest';

import { fixSettingsFrom } from '../../sidebar/settings';
import { SidebarModel } from '../../sidebar/model';
import { FakeBridge, followingBrokenCell, INotebook } from './harness';

const FIXED = "plt.bar(df['region'], df['revenue'])\nplt.show()";

let model: SidebarModel;
let nb: INotebook;
let bridge: FakeBridge;

async function propose(): Promise<void> {
  ({ model, nb, bridge } = followingBrokenCell());
  await model.fix();
  bridge.emit({ type: 'done', ok: true, code: FIXED, attempts: 1, seconds: 1, error: '', verified: '' });
}

afterEach(() => model?.dispose());

describe('SidebarModel: the verdict on a proposal', () => {
  test.each([
    ['accept', () => model.accept()],
    ['insert', () => model.insertBelow()],
    ['discard', () => model.discard()]
  ])('%s sends its verdict for this run', async (verdict, press) => {
    await propose();
    press();
    expect(bridge.sent.at(-1)).toEqual({ type: 'verdict', id: bridge.request.id, verdict });
    expect(model.phase).toBe('idle');
  });

  test('nothing is sent when the cell is gone, nor without a proposal', async () => {
    await propose();
    nb.model.sharedModel.deleteCell(1);
    model.accept();
    model.discard();
    expect(bridge.sent.map(m => m.type)).toEqual(['fix']);
  });

  test('a verdict the comm cannot take changes nothing the user sees', async () => {
    await propose();
    bridge.sendError = new Error('the comm is closed');
    model.accept();
    await Promise.resolve();
    expect(nb.cell(1).sharedModel.getSource()).toBe(FIXED);
    expect(model.problem).toBeNull();
  });
});

describe('fixSettingsFrom: collecting', () => {
  const registry = (composite: Record<string, unknown>) =>
    ({ composite }) as unknown as Parameters<typeof fixSettingsFrom>[0];

  test('a chosen switch is sent, null leaves it to the kernel', () => {
    expect(fixSettingsFrom(registry({ collect: true }))).toEqual({ collect: true });
    expect(fixSettingsFrom(registry({ collect: false }))).toEqual({ collect: false });
    expect(fixSettingsFrom(registry({ collect: null }))).toEqual({});
  });
});
