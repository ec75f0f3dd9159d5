import { Cell } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { CommandRegistry } from '@lumino/commands';
import { PanelLayout, Widget } from '@lumino/widgets';

import { CommandIDs, IFixPlotArgs } from '../commands';

const VISCODER_CELL = /^\s*%%?viscoder/;

export interface IFixableOutputOptions {
  /** The stock renderer this one wraps. */
  inner: IRenderMime.IRenderer;
  commands: CommandRegistry;
  label: string;
  origin: IFixPlotArgs['origin'];
  /** Whether this output deserves the button (e.g. an error, not any stderr text). */
  offer: (model: IRenderMime.IMimeModel) => boolean;
}

/**
 * A stock output renderer with a button under it that opens the VisCoder sidebar
 * on the output's cell. The output itself is drawn by the wrapped renderer.
 */
export class FixableOutput extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly _options: IFixableOutputOptions) {
    super();
    this.addClass('jp-VisCoder-fixable');
    const layout = (this.layout = new PanelLayout());
    layout.addWidget(_options.inner);
    const button = document.createElement('button');
    button.className = 'jp-Button jp-mod-styled jp-VisCoder-outputButton';
    button.textContent = _options.label;
    button.title = 'Open the VisCoder sidebar on this cell';
    button.addEventListener('click', () => this._onClick());
    this._bar = new Widget({ node: wrap(button) });
    this._bar.addClass('jp-VisCoder-outputBar');
    this._bar.hide();
    layout.addWidget(this._bar);
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    await this._options.inner.renderModel(model);
    this._offered = this._options.offer(model);
    this._update();
  }

  protected onAfterAttach(): void {
    this._update();
  }

  /**
   * The button shows only in a notebook's code cell, where the sidebar can take over; not
   * under %%viscoder's own output (its code is in the cell it inserted).
   */
  private _update(): void {
    const cell = this._cell();
    const code = cell?.model.type === 'code' ? cell.model.sharedModel.getSource() : null;
    this._bar.setHidden(!(this._offered && code !== null && !VISCODER_CELL.test(code)));
  }

  private _cell(): Cell | null {
    return ancestor(this, Cell);
  }

  private _onClick(): void {
    const cell = this._cell();
    const panel = ancestor(this, NotebookPanel);
    if (cell && panel) {
      const args: IFixPlotArgs = { notebookId: panel.id, cellId: cell.model.id, origin: this._options.origin };
      void this._options.commands.execute(CommandIDs.fixPlot, args as any);
    }
  }

  private _bar: Widget;
  private _offered = false;
}

/** The closest Lumino ancestor widget of a type: the output's cell, its notebook. */
function ancestor<T extends Widget>(widget: Widget, type: new (...args: any[]) => T): T | null {
  let current: Widget | null = widget.parent;
  while (current && !(current instanceof type)) {
    current = current.parent;
  }
  return current as T | null;
}

function wrap(button: HTMLButtonElement): HTMLElement {
  const div = document.createElement('div');
  div.appendChild(button);
  return div;
}
