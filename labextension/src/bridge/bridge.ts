import { ISessionContext } from '@jupyterlab/apputils';
import { Kernel, KernelMessage as KM } from '@jupyterlab/services';
import { JSONObject } from '@lumino/coreutils';
import { ISignal, Signal } from '@lumino/signaling';

import { COMM_TARGET, FrontendMessage, KernelMessage } from '../protocol';
import { IKernelBridge } from '../tokens';

/** Loads the IPython extension when the kernel has no `viscoder` target yet (no output). */
const LOAD_EXTENSION = "get_ipython().extension_manager.load_extension('viscoder_jupyter')";
const OPEN_TIMEOUT_MS = 60_000;
/** A Cancel on the control channel (viscoder_jupyter/frontends/cancel_control.py). */
export const CANCEL_REQUEST = 'viscoder_cancel_request';

/**
 * The `viscoder` comm of one notebook's kernel.
 *
 * The comm is opened on first use. When the notebook's kernel changes (or restarts),
 * the old comm is dropped and `lost` fires; the next `send` opens one on the new kernel.
 */
export class KernelBridge implements IKernelBridge {
  constructor(private readonly _context: ISessionContext) {
    _context.kernelChanged.connect(this._onKernelChanged, this);
    _context.statusChanged.connect(this._onStatusChanged, this);
  }

  get received(): ISignal<IKernelBridge, KernelMessage> {
    return this._received;
  }

  get lost(): ISignal<IKernelBridge, string> {
    return this._lost;
  }

  get kernelStatus(): ISignal<IKernelBridge, void> {
    return this._kernelStatus;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  async problem(): Promise<string | null> {
    const kernel = this._context.session?.kernel;
    if (!kernel) {
      return 'This notebook has no kernel. Start one (Kernel ▸ Change Kernel…), run your cells, then try again.';
    }
    if (kernel.status === 'busy') {
      return 'The kernel is busy running a cell. Wait for it to finish (or interrupt it), then click Fix again.';
    }
    if (kernel.status !== 'idle') {
      return `The kernel is ${kernel.status}; try again once it is idle.`;
    }
    const language = (await kernel.info).language_info.name.toLowerCase();
    if (language !== 'python') {
      return `This notebook's kernel (${this._context.kernelDisplayName}) runs ${language}, not Python: VisCoder fixes Python plotting code.`;
    }
    return null;
  }

  async send(message: FrontendMessage): Promise<void> {
    const comm = await this._ensureComm();
    if (message.type === 'cancel') {
      this._cancelOnControl(comm, message.id);
    }
    comm.send(message as unknown as JSONObject);
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._dropComm('');
    Signal.clearData(this);
  }

  private async _ensureComm(): Promise<Kernel.IComm> {
    const kernel = this._context.session?.kernel;
    if (!kernel) {
      throw new Error((await this.problem()) ?? 'No kernel.');
    }
    if (this._comm && this._commKernel === kernel && !this._comm.isDisposed) {
      return this._comm;
    }
    if (!this._opening) {
      this._opening = this._openOn(kernel).finally(() => (this._opening = null));
    }
    return this._opening;
  }

  private async _openOn(kernel: Kernel.IKernelConnection): Promise<Kernel.IComm> {
    const problem = await this.problem();
    if (problem) {
      throw new Error(problem);
    }
    let comm = await this._open(kernel);
    if (!comm) {
      await this._loadExtension(kernel);
      comm = await this._open(kernel);
    }
    if (!comm) {
      throw new Error(
        'The kernel has no VisCoder channel even after loading viscoder_jupyter; restart the kernel and try again.'
      );
    }
    this._comm = comm;
    this._commKernel = kernel;
    return comm;
  }

  /** Open a comm; null when the kernel has no such target (it closes the comm at once). */
  private _open(kernel: Kernel.IKernelConnection): Promise<Kernel.IComm | null> {
    const comm = kernel.createComm(COMM_TARGET);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error('The kernel did not answer: is it busy? Try again when it is idle.'));
      }, OPEN_TIMEOUT_MS);
      comm.onMsg = (msg: KM.ICommMsgMsg) => {
        const data = msg.content.data as unknown as KernelMessage;
        if (data.type === 'ready') {
          clearTimeout(timer);
          resolve(comm);
        } else {
          this._received.emit(data);
        }
      };
      comm.onClose = () => {
        clearTimeout(timer);
        resolve(null);
        if (this._comm === comm) {
          this._dropComm('The kernel closed the VisCoder channel.');
        }
      };
      comm.open({});
    });
  }

  /**
   * The comm's messages wait behind a running cell: the kernel reads them on its main thread
   * (ipykernel 7.4 routes them there even when JupyterLab sends them on a subshell). The control
   * channel has its own thread, as an interrupt needs, so a Cancel goes there too; the comm's
   * cancel still follows, for a kernel whose viscoder_jupyter has no control handler. The kernel
   * cancels a run once. No reply is awaited: the comm says "cancelled".
   */
  private _cancelOnControl(comm: Kernel.IComm, id: string): void {
    const kernel = this._commKernel;
    if (!kernel || kernel.isDisposed) {
      return;
    }
    // createMessage's overloads know only the protocol's own message types.
    const createMessage = KM.createMessage as (options: object) => KM.IControlMessage;
    const request = createMessage({
      msgType: CANCEL_REQUEST,
      channel: 'control',
      session: kernel.clientId,
      username: kernel.username,
      content: { comm_id: comm.commId, id }
    });
    try {
      kernel.sendControlMessage(request, false, true);
    } catch (reason) {
      console.warn('VisCoder: the cancel could not go on the control channel', reason);
    }
  }

  private async _loadExtension(kernel: Kernel.IKernelConnection): Promise<void> {
    const future = kernel.requestExecute({
      code: LOAD_EXTENSION,
      silent: true,
      store_history: false,
      allow_stdin: false,
      stop_on_error: false
    });
    const reply = await future.done;
    const content = reply.content;
    if (content.status === 'error') {
      if (content.ename === 'ModuleNotFoundError') {
        throw new Error(
          "viscoder_jupyter is not installed in this kernel's environment: pip install viscoder-jupyter there, then restart the kernel."
        );
      }
      throw new Error(`Loading viscoder_jupyter in the kernel failed: ${content.ename}: ${content.evalue}`);
    }
  }

  private _dropComm(reason: string): void {
    const comm = this._comm;
    this._comm = null;
    this._commKernel = null;
    if (comm && !comm.isDisposed) {
      comm.onClose = () => undefined;
      comm.dispose();
    }
    if (reason) {
      this._lost.emit(reason);
    }
  }

  private _onKernelChanged(): void {
    this._dropComm('The notebook changed kernels; the fix in progress was stopped.');
    this._kernelStatus.emit();
  }

  private _onStatusChanged(_: ISessionContext, status: string): void {
    if (status === 'restarting' || status === 'autorestarting' || status === 'dead') {
      this._dropComm(`The kernel is ${status}; the fix in progress was stopped.`);
    }
    this._kernelStatus.emit();
  }

  private _isDisposed = false;
  private _comm: Kernel.IComm | null = null;
  private _commKernel: Kernel.IKernelConnection | null = null;
  private _opening: Promise<Kernel.IComm> | null = null;
  private _received = new Signal<IKernelBridge, KernelMessage>(this);
  private _lost = new Signal<IKernelBridge, string>(this);
  private _kernelStatus = new Signal<IKernelBridge, void>(this);
}
