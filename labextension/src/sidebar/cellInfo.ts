import { ICodeCellModel } from '@jupyterlab/cells';
import { NotebookPanel } from '@jupyterlab/notebook';

// eslint-disable-next-line no-control-regex -- ANSI escapes start with ESC (\x1b)
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;

export function stripAnsi(text: string): string {
  return text.replace(ANSI, '');
}

/** The last error output of a code cell, ANSI-free, or null. */
export interface ICellError {
  ename: string;
  evalue: string;
  traceback: string;
}

export function lastError(model: ICodeCellModel): ICellError | null {
  const outputs = model.outputs;
  for (let i = outputs.length - 1; i >= 0; i--) {
    const output = outputs.get(i).toJSON();
    if (output.output_type === 'error') {
      const traceback = (output.traceback as string[] | undefined) ?? [];
      return {
        ename: String(output.ename ?? ''),
        evalue: String(output.evalue ?? ''),
        traceback: stripAnsi(traceback.join('\n'))
      };
    }
  }
  return null;
}

/** The code cell with this id in a notebook, and its index. */
export function findCell(panel: NotebookPanel, cellId: string): { model: ICodeCellModel; index: number } | null {
  const cells = panel.content.model?.cells;
  if (!cells) {
    return null;
  }
  for (let i = 0; i < cells.length; i++) {
    const model = cells.get(i);
    if (model.id === cellId && model.type === 'code') {
      return { model: model as ICodeCellModel, index: i };
    }
  }
  return null;
}
