import { ILabShell, ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IStateDB } from '@jupyterlab/statedb';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { CommandIDs, IFixPlotArgs } from '../commands';
import { IKernelBridges, IVisCoderSidebar } from '../tokens';
import { findCell } from './cellInfo';
import { FigureViewer } from './figure';
import { FigureDialog } from './figureDialog';
import { SidebarModel } from './model';
import { fixSettingsFrom, SETTINGS_ID } from './settings';
import { SidebarView } from './view';
import { IWidthStore, PanelWidth } from './width';

/** The state database's key for the width the user dragged the panel to. */
const WIDTH_KEY = 'viscoder-jupyter:sidebar-width';

function widthIn(state: IStateDB): IWidthStore {
  return {
    load: async () => {
      const saved = await state.fetch(WIDTH_KEY);
      return typeof saved === 'number' && saved > 0 ? saved : null;
    },
    save: async width => {
      await state.save(WIDTH_KEY, width);
    }
  };
}

/**
 * The VisCoder sidebar on the right: follows the active cell, runs fixes, applies them.
 * Every token it requires is one Notebook 7 provides too; JupyterLab-only ones are optional
 * (ILabShell: in Notebook 7 the panel goes in its right side panel through the generic shell).
 */
const sidebarPlugin: JupyterFrontEndPlugin<IVisCoderSidebar> = {
  id: SETTINGS_ID,
  description: 'The VisCoder sidebar: fix the plot of the active cell.',
  autoStart: true,
  requires: [INotebookTracker, IKernelBridges],
  optional: [ISettingRegistry, ICommandPalette, ILayoutRestorer, ILabShell, IStateDB],
  provides: IVisCoderSidebar,
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    bridges: IKernelBridges,
    registry: ISettingRegistry | null,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    labShell: ILabShell | null,
    state: IStateDB | null
  ): IVisCoderSidebar => {
    let settings: ISettingRegistry.ISettings | null = null;
    const model = new SidebarModel(bridges, () => fixSettingsFrom(settings));
    // JupyterLab opens the figure in a main-area tab; Notebook 7's main area holds only the notebook.
    const figures = labShell ? new FigureViewer(app.shell) : new FigureDialog();
    const view = new SidebarView(model, {
      width: new PanelWidth(state ? widthIn(state) : null),
      openFigure: (png, index) => {
        const cell = model.cellIndex >= 0 ? ` (cell #${model.cellIndex + 1})` : '';
        figures.open(png, `Proposed figure${index ? ` ${index + 1}` : ''}${cell}`);
      }
    });
    // The figure tab belongs to the proposal: once it is decided, back to the notebook.
    model.changed.connect(() => {
      if (!model.proposal && figures.widget && figures.close() && model.panel && !model.panel.isDisposed) {
        app.shell.activateById(model.panel.id);
      }
    });
    app.shell.add(view, 'right', { rank: 650 });
    restorer?.add(view, view.id);
    registry
      ?.load(SETTINGS_ID)
      .then(loaded => (settings = loaded))
      .catch(reason => console.warn('VisCoder: settings not loaded', reason));

    const followActive = () => {
      const panel = tracker.currentWidget;
      const cell = tracker.activeCell;
      model.follow(panel, panel && cell?.model.type === 'code' ? cell.model.id : null);
    };
    tracker.currentChanged.connect(followActive);
    tracker.activeCellChanged.connect(followActive);
    followActive();

    const sidebar: IVisCoderSidebar = {
      showCell: (panel: NotebookPanel, cellId: string) => {
        const found = findCell(panel, cellId);
        if (found) {
          model.show(panel, cellId);
        }
        app.shell.activateById(view.id);
        view.focusNote();
      }
    };

    app.commands.addCommand(CommandIDs.openSidebar, {
      label: 'Open the VisCoder Sidebar',
      execute: () => app.shell.activateById(view.id)
    });
    app.commands.addCommand(CommandIDs.fixPlot, {
      label: 'Fix in VisCoder…',
      caption: 'Open the VisCoder sidebar on this cell',
      execute: args => {
        const { notebookId, cellId } = args as IFixPlotArgs;
        const panel = notebookId ? tracker.find(p => p.id === notebookId) : tracker.currentWidget;
        const id = cellId ?? (panel === tracker.currentWidget ? tracker.activeCell?.model.id : undefined);
        if (panel && id) {
          sidebar.showCell(panel, id);
        } else {
          app.shell.activateById(view.id);
        }
      }
    });
    palette?.addItem({ command: CommandIDs.openSidebar, category: 'VisCoder' });
    palette?.addItem({ command: CommandIDs.fixPlot, category: 'VisCoder' });
    return sidebar;
  }
};

export default sidebarPlugin;
