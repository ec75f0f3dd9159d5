/**
 * The pieces a SidebarModel needs, as real as node allows.
 *
 * Real: the notebook and cell models (NotebookModel, CodeCellModel with its Yjs shared model,
 * undo manager and output area) and @lumino/signaling.
 *
 * Stand-ins, each because the real one needs what node does not have:
 * - the NotebookPanel: a real one renders a notebook widget and needs a document context with a
 *   server connection; the model reads only `content.model`, `content.activeCellIndex` and (to
 *   scroll after Accept) `content.widgets`, so the stand-in holds a real NotebookModel and no cell
 *   widgets.
 * - the kernel bridge: the real one opens a comm on a running kernel; this one records what the
 *   model sends and lets the test play the kernel's messages, through real Signals.
 */
import { CodeCellModel } from '@jupyterlab/cells/lib/model';
import { NotebookPanel } from '@jupyterlab/notebook';
import { NotebookModel } from '@jupyterlab/notebook/lib/model';
import { Signal } from '@lumino/signaling';

import { FrontendMessage, IFixRequest, IFixSettings, IReady, KernelMessage } from '../../protocol';
import { SidebarModel } from '../../sidebar/model';
import { IKernelBridge, IKernelBridges } from '../../tokens';

/** A kernel message as the test writes it: the bridge adds the run's id. */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export class FakeBridge implements IKernelBridge {
  readonly received: Signal<IKernelBridge, KernelMessage> = new Signal(this);
  readonly lost: Signal<IKernelBridge, string> = new Signal(this);
  readonly kernelStatus: Signal<IKernelBridge, void> = new Signal(this);
  readonly sent: FrontendMessage[] = [];
  /** What `problem()` answers (no kernel, busy...). */
  problemText: string | null = null;
  /** When set, `send` fails with it (the comm could not be opened). */
  sendError: Error | null = null;
  isDisposed = false;

  async problem(): Promise<string | null> {
    return this.problemText;
  }

  async send(message: FrontendMessage): Promise<void> {
    if (this.sendError) {
      throw this.sendError;
    }
    this.sent.push(message);
  }

  /** The last fix request the model sent. */
  get request(): IFixRequest {
    const fix = this.sent.filter((m): m is IFixRequest => m.type === 'fix').pop();
    if (!fix) {
      throw new Error('no fix request was sent');
    }
    return fix;
  }

  /** The kernel sends a message of the current run (its `id` is the last request's). */
  emit(message: WithoutId<Exclude<KernelMessage, IReady>>): void {
    this.received.emit({ ...message, id: this.request.id } as KernelMessage);
  }

  dispose(): void {
    this.isDisposed = true;
  }
}

export class FakeBridges implements IKernelBridges {
  readonly bridges = new Map<NotebookPanel, FakeBridge>();

  get(panel: NotebookPanel): FakeBridge {
    let bridge = this.bridges.get(panel);
    if (!bridge) {
      bridge = new FakeBridge();
      this.bridges.set(panel, bridge);
    }
    return bridge;
  }
}

export interface INotebook {
  panel: NotebookPanel;
  model: NotebookModel;
  cell(index: number): CodeCellModel;
}

/** A notebook of code cells, in a stand-in panel (see above). */
export function notebook(...sources: string[]): INotebook {
  const model = new NotebookModel();
  sources.forEach((source, index) => model.sharedModel.insertCell(index, { cell_type: 'code', source }));
  const content = { model, activeCellIndex: 0, widgets: [], isHidden: true };
  const panel = { content } as unknown as NotebookPanel;
  return { panel, model, cell: index => model.cells.get(index) as CodeCellModel };
}

/** An error output as a kernel writes it: the traceback is ANSI-coloured. */
export function addError(cell: CodeCellModel, ename: string, evalue: string): void {
  cell.outputs.add({
    output_type: 'error',
    ename,
    evalue,
    traceback: [
      '\x1b[0;31m---------------------------------------------------------\x1b[0m',
      `\x1b[0;31m${ename}\x1b[0m: ${evalue}`
    ]
  });
}

export const SETTINGS: IFixSettings = { backend: 'replay', retries: 2 };

export function sidebar(settings: IFixSettings = SETTINGS): { model: SidebarModel; bridges: FakeBridges } {
  const bridges = new FakeBridges();
  return { model: new SidebarModel(bridges, () => settings), bridges };
}

/** The user's cell that failed: a misspelt column. */
export const BROKEN = "plt.bar(df['region'], df['revenu'])";

/** A sidebar following cell 1 of a fresh notebook (`import pandas`, BROKEN, then `more`) whose cell 1 failed with a KeyError. */
export function followingBrokenCell(...more: string[]): { model: SidebarModel; nb: INotebook; bridge: FakeBridge } {
  const { model, bridges } = sidebar();
  const nb = notebook('import pandas as pd', BROKEN, ...more);
  addError(nb.cell(1), 'KeyError', "'revenu'");
  model.follow(nb.panel, nb.cell(1).id);
  return { model, nb, bridge: bridges.get(nb.panel) };
}
