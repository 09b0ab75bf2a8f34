/**
 * jupyter-codexmax in JupyterLab: the agent works on the notebook on screen.
 *
 * Two plugins: `bridge`, for every notebook the bridge's frontend half (`bridge.ts`) on
 * its kernel and the agent's toolbar item (`toolbar.ts`); `sidebar`, the chat on the
 * right (`sidebar.ts`) that drives the active notebook's agent through its bridge. The
 * protocol is docs/bridge.md's (`protocol.ts`).
 */

import {
  ILabShell,
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { IRenderMimeRegistry } from '@jupyterlab/rendermime';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { LabIcon } from '@jupyterlab/ui-components';

import { NotebookBridge } from './bridge.js';
import { ChatSidebar, IChatDefaults } from './sidebar.js';
import { AgentToolbarItem } from './toolbar.js';

/** This extension's version (the Python package's: tests check they agree). */
export const VERSION = '0.1.0';

/** The command that opens the sidebar chat (palette, notebook context menu, Ctrl+Alt+C). */
export const OPEN_CHAT = 'codexmax:open-chat';

/** One bridge per open notebook (its document context), shared by both plugins. */
const bridges = new WeakMap<object, NotebookBridge>();
let client = 'JupyterLab / jupyter-codexmax';

function bridgeFor(panel: NotebookPanel): NotebookBridge {
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
}

const bridgePlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-codexmax:bridge',
  description:
    "The agent works on the notebook on screen: the kernel bridge and the agent's toolbar item.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker): void => {
    client = `JupyterLab ${app.version} / jupyter-codexmax ${VERSION}`;
    tracker.widgetAdded.connect((_, panel) => {
      const bridge = bridgeFor(panel);
      const item = new AgentToolbarItem(bridge);
      if (!panel.toolbar.insertBefore('spacer', 'jupyter-codexmax', item)) {
        panel.toolbar.addItem('jupyter-codexmax', item);
      }
    });
  }
};

const chatIcon = new LabIcon({
  name: 'jupyter-codexmax:chat',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16">' +
    '<path class="jp-icon3" fill="#616161" d="M4 3h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 ' +
    '2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2zm3 5v2h2V8H7zm4 0v2h2V8h-2zm4 ' +
    '0v2h2V8h-2z"/></svg>'
});

function defaultsFrom(settings: ISettingRegistry.ISettings | null): IChatDefaults {
  const get = (key: string): string => {
    const value = settings?.get(key).composite;
    return typeof value === 'string' ? value : '';
  };
  return { effort: get('effort'), model: get('model'), approval: get('approval') };
}

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-codexmax:sidebar',
  description:
    "The agent's chat in the sidebar: the active notebook's session, as %%agent cells.",
  autoStart: true,
  requires: [INotebookTracker, IRenderMimeRegistry],
  optional: [ILabShell, ICommandPalette, ISettingRegistry, ILayoutRestorer],
  activate: async (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    rendermime: IRenderMimeRegistry,
    labShell: ILabShell | null,
    palette: ICommandPalette | null,
    registry: ISettingRegistry | null,
    restorer: ILayoutRestorer | null
  ): Promise<void> => {
    let settings: ISettingRegistry.ISettings | null = null;
    if (registry) {
      try {
        settings = await registry.load(sidebarPlugin.id);
      } catch (error) {
        console.warn(`jupyter-codexmax: the sidebar's settings: ${String(error)}`);
      }
    }
    const sidebar = new ChatSidebar(rendermime, defaultsFrom(settings));
    sidebar.title.icon = chatIcon;
    settings?.changed.connect(() => sidebar.setDefaults(defaultsFrom(settings)));
    const follow = (): void => {
      const panel = tracker.currentWidget;
      sidebar.setNotebook(panel, panel ? bridgeFor(panel) : null);
    };
    tracker.widgetAdded.connect((_, panel) => sidebar.track(panel, bridgeFor(panel)));
    tracker.currentChanged.connect(follow);
    follow();
    app.shell.add(sidebar, 'right', { rank: 900 });
    restorer?.add(sidebar, 'codexmax-chat');
    app.commands.addCommand(OPEN_CHAT, {
      label: 'Open the Agent Chat',
      caption: "Chat with the active notebook's agent (jupyter-codexmax)",
      icon: chatIcon,
      execute: () => {
        follow();
        if (labShell) {
          labShell.expandRight();
        }
        app.shell.activateById(sidebar.id);
        sidebar.focusInput();
      }
    });
    palette?.addItem({ command: OPEN_CHAT, category: 'Agent' });
    app.contextMenu.addItem({
      command: OPEN_CHAT,
      selector: '.jp-Notebook',
      rank: 100
    });
    app.commands.addKeyBinding({
      command: OPEN_CHAT,
      keys: ['Accel Alt C'],
      selector: 'body'
    });
  }
};

export default [bridgePlugin, sidebarPlugin];
