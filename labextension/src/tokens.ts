import { NotebookPanel } from '@jupyterlab/notebook';
import { Token } from '@lumino/coreutils';
import { IDisposable } from '@lumino/disposable';
import { ISignal } from '@lumino/signaling';

import { FrontendMessage, KernelMessage } from './protocol';

/**
 * One notebook's channel to its kernel: the `viscoder` comm, reopened on the new
 * kernel when the kernel changes.
 */
export interface IKernelBridge extends IDisposable {
  /** Protocol messages from the kernel, for every run. */
  readonly received: ISignal<IKernelBridge, KernelMessage>;
  /** The kernel went away (changed, restarted, died): runs in flight are over. */
  readonly lost: ISignal<IKernelBridge, string>;
  /** The notebook's kernel changed status (idle, busy, starting...) or was replaced. */
  readonly kernelStatus: ISignal<IKernelBridge, void>;
  /** Why a fix cannot start now (no kernel, not Python, busy), or null. */
  problem(): Promise<string | null>;
  /** Send a message, opening the comm first (and loading the IPython extension if needed). */
  send(message: FrontendMessage): Promise<void>;
}

/**
 * The bridges of all open notebooks, one per notebook panel.
 */
export interface IKernelBridges {
  /** The bridge of this notebook (created on first use, disposed with the panel). */
  get(panel: NotebookPanel): IKernelBridge;
}

export const IKernelBridges = new Token<IKernelBridges>(
  'viscoder-jupyter:IKernelBridges',
  'Per-notebook comm channels to the kernel side of VisCoder (viscoder_jupyter/comm.py).'
);

/**
 * The VisCoder sidebar.
 */
export interface IVisCoderSidebar {
  /** Show the sidebar on a code cell of a notebook, pinned to it until the user acts. */
  showCell(panel: NotebookPanel, cellId: string): void;
}

export const IVisCoderSidebar = new Token<IVisCoderSidebar>(
  'viscoder-jupyter:IVisCoderSidebar',
  'The VisCoder sidebar: follows the active cell, runs fixes, shows and applies proposals.'
);
