import bridgePlugin from './bridge/plugin';
import fixPlotPlugin from './fixPlot/plugin';
import liveViewPlugin from './liveView/plugin';
import sidebarPlugin from './sidebar/plugin';

export * from './tokens';
export * from './protocol';
export { CommandIDs } from './commands';

export default [bridgePlugin, sidebarPlugin, fixPlotPlugin, liveViewPlugin];
