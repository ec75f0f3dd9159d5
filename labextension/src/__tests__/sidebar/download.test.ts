/**
 * A model download before the first attempt shows in the sidebar: bytes, rate and time left,
 * until the run moves on or stops. Real notebook and cell models; the panel and the kernel
 * bridge are stand-ins (harness.ts says why).
 */
import { afterEach, describe, expect, test } from 'vitest';

import { downloadText } from '../../sidebar/download';
import { SidebarModel } from '../../sidebar/model';
import { FakeBridge, followingBrokenCell } from './harness';

const WHAT = 'TIGER-Lab/VisCoder-7B';
let model: SidebarModel;
let bridge: FakeBridge;

async function fixing(): Promise<void> {
  ({ model, bridge } = followingBrokenCell());
  await model.fix();
}

afterEach(() => model?.dispose());

describe('the sidebar during a model download', () => {
  test('shows each progress message, then drops it when the first attempt starts', async () => {
    await fixing();
    bridge.emit({ type: 'download', what: WHAT, done: 1_230_000_000, total: 15_230_000_000, rate: 45e6, eta: 311 });
    expect(model.download && downloadText(model.download)).toBe(
      'Downloading TIGER-Lab/VisCoder-7B: 1.2 GB of 15.2 GB (8%), 45.0 MB/s, about 5 min left'
    );
    bridge.emit({ type: 'download', what: WHAT, done: 15_230_000_000, total: 15_230_000_000, rate: 45e6, eta: 0 });
    expect(model.download?.done).toBe(15_230_000_000);
    bridge.emit({ type: 'attempt', number: 1, of: 4 });
    expect(model.download).toBeNull();
  });

  test('a cancelled download leaves no progress behind', async () => {
    await fixing();
    bridge.emit({ type: 'download', what: WHAT, done: 10, total: 0, rate: 0, eta: -1 });
    expect(model.download && downloadText(model.download)).toBe('Downloading TIGER-Lab/VisCoder-7B: 10 B');
    await model.cancel();
    bridge.emit({ type: 'cancelled' });
    expect(model.download).toBeNull();
    expect(model.phase).toBe('idle');
  });
});
