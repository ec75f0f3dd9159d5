import { NotebookPanel } from '@jupyterlab/notebook';

import { IKernelBridge, IKernelBridges } from '../tokens';
import { KernelBridge } from './bridge';

/**
 * One bridge per notebook panel, disposed with the panel.
 */
export class BridgeRegistry implements IKernelBridges {
  get(panel: NotebookPanel): IKernelBridge {
    let bridge = this._bridges.get(panel);
    if (!bridge) {
      bridge = new KernelBridge(panel.sessionContext);
      this._bridges.set(panel, bridge);
      panel.disposed.connect(() => {
        this._bridges.get(panel)?.dispose();
        this._bridges.delete(panel);
      });
    }
    return bridge;
  }

  private _bridges = new Map<NotebookPanel, IKernelBridge>();
}
