import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';

import { IKernelBridges } from '../tokens';
import { BridgeRegistry } from './registry';

/**
 * Provides the per-notebook kernel channels.
 */
const bridgePlugin: JupyterFrontEndPlugin<IKernelBridges> = {
  id: 'viscoder-jupyter:bridge',
  description: 'Per-notebook comm channels to the kernel side of VisCoder.',
  autoStart: true,
  provides: IKernelBridges,
  activate: (_app: JupyterFrontEnd): IKernelBridges => new BridgeRegistry()
};

export default bridgePlugin;
