import { Dialog } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

/**
 * The proposal's figure at its natural size in a dialog, for shells whose main area holds one
 * document and takes no other tab (Notebook 7: its shell ignores a second main-area widget).
 * The same contract as FigureViewer; Escape or Close dismisses it.
 */
export class FigureDialog {
  get widget(): Dialog<unknown> | null {
    return this._dialog && !this._dialog.isDisposed ? this._dialog : null;
  }

  open(png: string, label: string): void {
    this.close();
    const body = new Widget();
    body.addClass('jp-VisCoder-figureView');
    const img = document.createElement('img');
    img.alt = 'The proposed fix: its figure at full size';
    img.src = `data:image/png;base64,${png}`;
    body.node.appendChild(img);
    const dialog = (this._dialog = new Dialog({
      title: label,
      body,
      buttons: [Dialog.okButton({ label: 'Close' })]
    }));
    dialog.id = 'viscoder-figure';
    dialog.addClass('jp-VisCoder-figureDialog');
    // The dialog disposes itself once dismissed.
    void dialog.launch();
  }

  /** Dismiss the dialog; returns false: the notebook stayed the current widget under it. */
  close(): boolean {
    this.widget?.reject();
    this._dialog = null;
    return false;
  }

  private _dialog: Dialog<unknown> | null = null;
}
