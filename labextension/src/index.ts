/**
 * jupyter-codexmax in JupyterLab: the agent works on the notebook on screen.
 *
 * One plugin: for every notebook, the bridge's frontend half (`bridge.ts`) on its kernel,
 * and the agent's toolbar item (`toolbar.ts`). The protocol is docs/bridge.md's
 * (`protocol.ts`).
 */

import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';

import { NotebookBridge } from './bridge.js';
import { AgentToolbarItem } from './toolbar.js';

/** This extension's version (the Python package's: tests check they agree). */
export const VERSION = '0.1.0';

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-codexmax:bridge',
  description:
    "The agent works on the notebook on screen: the kernel bridge and the agent's toolbar item.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    const client = `JupyterLab ${app.version} / jupyter-codexmax ${VERSION}`;
    const bridges = new WeakMap<object, NotebookBridge>();
    const bridgeFor = (panel: NotebookPanel): NotebookBridge => {
      const context = panel.context;
      let bridge = bridges.get(context);
      if (!bridge || bridge.isDisposed) {
        const made = new NotebookBridge(context, client);
        bridges.set(context, made);
        context.disposed.connect(() => made.dispose());
        bridge = made;
      }
      bridge.addPanel(panel);
      return bridge;
    };
    tracker.widgetAdded.connect((_, panel) => {
      const bridge = bridgeFor(panel);
      const item = new AgentToolbarItem(bridge);
      if (!panel.toolbar.insertBefore('spacer', 'jupyter-codexmax', item)) {
        panel.toolbar.addItem('jupyter-codexmax', item);
      }
    });
  }
};

export default plugin;
