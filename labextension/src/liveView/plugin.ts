import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISessionContext } from '@jupyterlab/apputils';
import type { IChangedArgs } from '@jupyterlab/coreutils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';

import { stopRunningViews } from './stopped';

const RESTARTED = 'the kernel restarted';
const DIED = 'the kernel died';
const SHUT_DOWN = 'the kernel was shut down';

/** Why a run stopped, by the status that says its kernel went away. */
const STOPPED_BY: { [status: string]: string } = {
  restarting: RESTARTED,
  autorestarting: DIED,
  dead: DIED,
  terminating: SHUT_DOWN
};

/**
 * Watches one notebook's kernel: when it restarts, dies or is shut down or replaced, the live
 * views of `%%viscoder` runs in that notebook (widgets, which go with the kernel) become plain
 * text that says the run stopped and why, with the run's last record.
 */
class LiveViewWatcher {
  constructor(private readonly _panel: NotebookPanel) {
    const context = _panel.sessionContext;
    context.statusChanged.connect(this._onStatus, this);
    context.kernelChanged.connect(this._onKernelChanged, this);
    _panel.disposed.connect(() => {
      context.statusChanged.disconnect(this._onStatus, this);
      context.kernelChanged.disconnect(this._onKernelChanged, this);
      clearTimeout(this._timer);
    });
  }

  private _onStatus(_: ISessionContext, status: Kernel.Status | 'terminating'): void {
    const reason = STOPPED_BY[status];
    if (reason) {
      // A crash reads "restarting" (the server restarted the kernel on its own) and then, in the
      // same turn, "autorestarting": the later word wins, so the stop is written a moment later.
      if (!this._pending || (this._pending === RESTARTED && reason === DIED)) {
        this._pending = reason;
      }
      if (this._timer === undefined) {
        this._timer = setTimeout(() => {
          this._timer = undefined;
          this._stop(this._pending ?? reason);
        }, 0);
      }
    } else if (this._pending && this._timer === undefined) {
      // Once more as the new kernel comes up, in case a last update of the old run's display
      // came in since (none should: the old kernel's requests are dropped when it goes).
      this._stop(this._pending);
      if (status === 'idle' || status === 'busy') {
        this._pending = null;
      }
    }
  }

  private _onKernelChanged(
    _: ISessionContext,
    change: IChangedArgs<Kernel.IKernelConnection | null, Kernel.IKernelConnection | null, 'kernel'>
  ): void {
    // A restart ends with kernelChanged from the kernel to itself: nothing changed then.
    if (change.oldValue && change.oldValue !== change.newValue) {
      this._stop(change.newValue ? 'the notebook changed kernels' : SHUT_DOWN);
    }
  }

  private _stop(reason: string): void {
    const model = this._panel.content.model;
    if (model && !this._panel.isDisposed) {
      stopRunningViews(model, reason);
    }
  }

  private _pending: string | null = null;
  private _timer: ReturnType<typeof setTimeout> | undefined = undefined;
}

/**
 * The live views of `%%viscoder` runs say so when the kernel goes away mid-run, instead of
 * freezing at "attempt 1 of 4: writing code..." with broken widgets.
 */
const liveViewPlugin: JupyterFrontEndPlugin<void> = {
  id: 'viscoder-jupyter:live-view',
  description: 'Marks %%viscoder runs as stopped when their kernel restarts, dies or is shut down.',
  autoStart: true,
  requires: [INotebookTracker],
  activate: (_app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    const watched = new WeakSet<NotebookPanel>();
    const watch = (panel: NotebookPanel) => {
      if (!watched.has(panel)) {
        watched.add(panel);
        new LiveViewWatcher(panel);
      }
    };
    tracker.forEach(watch);
    tracker.widgetAdded.connect((_, panel) => watch(panel));
  }
};

export default liveViewPlugin;
