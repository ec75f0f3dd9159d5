import { ICodeCellModel } from '@jupyterlab/cells';
import type * as nbformat from '@jupyterlab/nbformat';
import { IOutputModel } from '@jupyterlab/rendermime';
import { INotebookModel } from '@jupyterlab/notebook';

/**
 * The live view of a `%%viscoder` run (viscoder_jupyter/progress.py, WidgetProgress) is an
 * ipywidget; beside it, the same display output keeps a plain-text record of the run in its
 * `text/plain` and says in `metadata.viscoder.state` whether the run is still going
 * ("running") or over ("done").
 */
export const RUNNING = 'running';
/** The state of an output this module replaced. */
export const STOPPED = 'stopped';

/** Whether an output is the live view of a run that has not ended. */
export function isRunningView(output: IOutputModel): boolean {
  const viscoder = (output.metadata as { viscoder?: { state?: unknown } } | undefined)?.viscoder;
  return viscoder?.state === RUNNING;
}

/**
 * The plain-text output that replaces a live view whose kernel went away:
 *
 *     VisCoder: stopped: the kernel restarted
 *       last status: attempt 1 of 4: writing code...
 *       attempt 1 failed: ...      (the record's other lines, as they were)
 */
export function stoppedOutput(output: IOutputModel, reason: string): nbformat.IDisplayData {
  const plain = output.data['text/plain'];
  const record = (Array.isArray(plain) ? plain.join('') : typeof plain === 'string' ? plain : '')
    .split('\n')
    .filter(line => line.trim());
  const lines = [`VisCoder: stopped: ${reason}`];
  if (record.length) {
    lines.push(`  last status: ${record[0].replace(/^VisCoder:\s*/, '')}`, ...record.slice(1));
  }
  return {
    output_type: 'display_data',
    data: { 'text/plain': lines.join('\n') },
    metadata: { viscoder: { state: STOPPED, reason } }
  };
}

/**
 * Replace, in every code cell of a notebook, the live views of runs still marked running by
 * their stopped text. Returns how many were replaced.
 */
export function stopRunningViews(model: INotebookModel, reason: string): number {
  let replaced = 0;
  const cells = model.cells;
  for (let c = 0; c < cells.length; c++) {
    const cell = cells.get(c);
    if (cell.type !== 'code') {
      continue;
    }
    const outputs = (cell as ICodeCellModel).outputs;
    for (let i = 0; i < outputs.length; i++) {
      const output = outputs.get(i);
      if (isRunningView(output)) {
        outputs.set(i, stoppedOutput(output, reason));
        replaced++;
      }
    }
  }
  return replaced;
}
