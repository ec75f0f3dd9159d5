import { JupyterFrontEnd } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { Widget } from '@lumino/widgets';

import { viscoderIcon } from './icon';

/**
 * The proposal's figure at its natural size, in a main-area tab (the sidebar shows it
 * scaled to the panel's width). One tab, reused; closed when the proposal is decided.
 */
export class FigureViewer {
  constructor(private readonly _shell: JupyterFrontEnd.IShell) {}

  get widget(): MainAreaWidget | null {
    return this._widget && !this._widget.isDisposed ? this._widget : null;
  }

  open(png: string, label: string): void {
    let widget = this.widget;
    if (!widget) {
      const content = new Widget();
      content.addClass('jp-VisCoder-figureView');
      const img = document.createElement('img');
      img.alt = 'The proposed fix: its figure at full size';
      content.node.appendChild(img);
      widget = this._widget = new MainAreaWidget({ content });
      widget.id = 'viscoder-figure';
      widget.title.icon = viscoderIcon;
      widget.title.closable = true;
      this._shell.add(widget, 'main');
    }
    widget.title.label = label;
    widget.title.caption = label;
    widget.content.node.querySelector('img')!.src = `data:image/png;base64,${png}`;
    this._shell.activateById(widget.id);
  }

  /** Close the tab; returns whether it was the current main-area widget. */
  close(): boolean {
    const widget = this.widget;
    if (!widget) {
      return false;
    }
    const wasCurrent = this._shell.currentWidget === widget;
    widget.dispose();
    this._widget = null;
    return wasCurrent;
  }

  private _widget: MainAreaWidget | null = null;
}
