/**
 * Command IDs, in one place: buttons and menus only run commands.
 */
export namespace CommandIDs {
  /** Show the VisCoder sidebar. */
  export const openSidebar = 'viscoder:open-sidebar';
  /**
   * Open the sidebar on a cell: args `{ notebookId?, cellId?, origin? }` (see IFixPlotArgs);
   * without them, the active cell of the current notebook.
   */
  export const fixPlot = 'viscoder:fix-plot';
}

/** Arguments of `viscoder:fix-plot`. */
export interface IFixPlotArgs {
  /** The notebook panel's widget id (cell ids are only unique within a notebook). */
  notebookId?: string;
  cellId?: string;
  origin?: 'error' | 'image' | 'menu';
}
