import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { IOutputModel, IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { FixableOutput, IFixableOutputOptions } from './fixableOutput';

const PNG = 'image/png';
/** What the buttons under outputs do: open the VisCoder sidebar on their cell. */
const FIX_BUTTON_LABEL = 'Fix in VisCoder…';
const STDERR = 'application/vnd.jupyter.stderr';

/** An error output (a traceback), as opposed to text a program wrote to stderr. */
function isError(model: IRenderMime.IMimeModel): boolean {
  return (model as Partial<IOutputModel>).type === 'error';
}

/**
 * "Fix in VisCoder…" under image outputs and errors: the stock renderers for those types,
 * wrapped (registered ahead of them), each with a button that runs `viscoder:fix-plot` on its
 * cell. The button only opens the sidebar on the cell (hence the ellipsis); the fix starts
 * from the sidebar's own "Fix this plot".
 */
const fixPlotPlugin: JupyterFrontEndPlugin<void> = {
  id: 'viscoder-jupyter:fix-buttons',
  description: 'Buttons under plots and errors that open the VisCoder sidebar on their cell.',
  autoStart: true,
  requires: [IRenderMimeRegistry],
  activate: (app: JupyterFrontEnd, rendermime: IRenderMimeRegistry) => {
    const wrapFactory = (
      mimeType: string,
      rank: number,
      options: Omit<IFixableOutputOptions, 'inner' | 'commands'>
    ) => {
      const stock = rendermime.getFactory(mimeType);
      if (!stock) {
        console.warn(`VisCoder: no renderer for ${mimeType} to wrap`);
        return;
      }
      rendermime.addFactory(
        {
          safe: stock.safe,
          mimeTypes: [mimeType],
          defaultRank: rank,
          createRenderer: rendererOptions =>
            new FixableOutput({ ...options, inner: stock.createRenderer(rendererOptions), commands: app.commands })
        },
        rank
      );
    };
    wrapFactory(PNG, 89, { label: FIX_BUTTON_LABEL, origin: 'image', offer: () => true });
    wrapFactory(STDERR, 109, { label: FIX_BUTTON_LABEL, origin: 'error', offer: isError });
  }
};

export default fixPlotPlugin;
