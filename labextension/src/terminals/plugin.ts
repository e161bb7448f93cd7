/** A terminal on a runtime: Runtime > Open terminal (the current notebook's runtime) and a
 * Launcher card per runtime. JupyterLab's own Terminal widget, on a TerminalManager whose base
 * URL is the runtime's route in this server (`accel/runtimes/{name}/`). */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget, showErrorMessage } from '@jupyterlab/apputils';
import { URLExt } from '@jupyterlab/coreutils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ServerConnection, TerminalManager } from '@jupyterlab/services';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITerminal, Terminal } from '@jupyterlab/terminal';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { terminalIcon } from '@jupyterlab/ui-components';
import { IDisposable } from '@lumino/disposable';

import { parseSpecName } from '../names';
import { CommandIDs, IAccelRuntimes, IRuntime } from '../tokens';

/** Why a runtime has no terminal, or null when it has one. */
export function terminalRefusal(
  runtime: IRuntime | undefined,
  trans: TranslationBundle
): string | null {
  if (!runtime) {
    return trans.__('No such runtime');
  }
  if (!runtime.info) {
    return trans.__('Terminals are not supported by this runtime (a stock gateway).');
  }
  if (!(runtime.info.features ?? []).includes('terminals')) {
    return trans.__('Terminals are turned off on this runtime.');
  }
  return null;
}

/** Server settings whose REST and websocket base is the runtime's route in this server. */
export function runtimeServerSettings(
  base: ServerConnection.ISettings,
  name: string
): ServerConnection.ISettings {
  const prefix = URLExt.join('accel/runtimes', encodeURIComponent(name));
  return ServerConnection.makeSettings({
    ...base,
    baseUrl: URLExt.join(base.baseUrl, prefix) + '/',
    wsUrl: URLExt.join(base.wsUrl, prefix) + '/'
  });
}

/** The user's JupyterLab terminal settings (font, theme, scrollback, screen reader mode...), so
 * a runtime's terminal looks and behaves as this machine's does. */
async function userTerminalOptions(
  registry: ISettingRegistry | null
): Promise<Partial<ITerminal.IOptions>> {
  if (!registry) {
    return {};
  }
  try {
    const settings = await registry.load('@jupyterlab/terminal-extension:plugin');
    return settings.composite as Partial<ITerminal.IOptions>;
  } catch {
    return {};
  }
}

export const terminalsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:terminals',
  description: 'Terminals on runtimes: Runtime > Open terminal and a Launcher card per runtime.',
  autoStart: true,
  requires: [IAccelRuntimes],
  optional: [ILauncher, ISettingRegistry, ITranslator, INotebookTracker],
  activate: (
    app: JupyterFrontEnd,
    runtimes: IAccelRuntimes,
    launcher: ILauncher | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null,
    notebooks: INotebookTracker | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const managers = new Map<string, TerminalManager>();
    const manager = (name: string) => {
      let m = managers.get(name);
      if (!m) {
        m = new TerminalManager({
          serverSettings: runtimeServerSettings(app.serviceManager.serverSettings, name)
        });
        managers.set(name, m);
      }
      return m;
    };
    const target = (args: any): IRuntime | undefined => {
      // The notebook in front, read now: its kernel's runtime, else this machine.
      const kernel = notebooks?.currentWidget?.sessionContext.session?.kernel?.name;
      const name =
        (args.runtime as string) ||
        parseSpecName(kernel)?.runtime ||
        runtimes.current ||
        runtimes.runtimes.find(r => r.embedded)?.name;
      return runtimes.runtimes.find(r => r.name === name);
    };

    app.commands.addCommand(CommandIDs.openTerminal, {
      label: args =>
        args.runtime
          ? trans.__('Terminal · %1', target(args)?.display_name ?? String(args.runtime))
          : trans.__('Open terminal on the runtime'),
      caption: trans.__("A shell on the runtime's machine, in its workspace"),
      icon: args => (args.runtime ? terminalIcon : undefined),
      execute: async args => {
        let runtime = target(args);
        if (!runtime) {
          await runtimes.refresh(); // the list may not have arrived yet
          runtime = target(args);
        }
        const refusal = terminalRefusal(runtime, trans);
        if (refusal || !runtime) {
          await showErrorMessage(
            trans.__('No terminal on %1', runtime?.display_name ?? trans.__('this runtime')),
            refusal ?? ''
          );
          return;
        }
        let session;
        try {
          session = await manager(runtime.name).startNew();
        } catch (error) {
          await showErrorMessage(
            trans.__('No terminal on %1', runtime.display_name),
            String((error as Error).message ?? error)
          );
          return;
        }
        const content = new Terminal(
          session,
          await userTerminalOptions(settingRegistry),
          translator ?? nullTranslator
        );
        const widget = new MainAreaWidget({ content });
        widget.id = `jp-accel-terminal-${runtime.name}-${session.name}`;
        // The Terminal widget names itself "Terminal N" once connected: keep the runtime in the name.
        const label = trans.__('Terminal %1 · %2', session.name, runtime.display_name);
        const keepLabel = () => {
          if (content.title.label !== label) {
            content.title.label = label;
          }
        };
        content.title.changed.connect(keepLabel);
        keepLabel();
        widget.title.caption = trans.__('Terminal on %1', runtime.display_name);
        widget.title.icon = terminalIcon;
        widget.title.closable = true;
        widget.node.dataset.accelRuntime = runtime.name;
        app.shell.add(widget, 'main');
        app.shell.activateById(widget.id);
        return widget;
      }
    });

    if (launcher) {
      let cards: IDisposable[] = [];
      let shown = '';
      const refresh = () => {
        const withTerminals = runtimes.runtimes.filter(
          r => r.healthy && terminalRefusal(r, trans) === null
        );
        const key = withTerminals.map(r => `${r.name}:${r.display_name}`).join('|');
        if (key === shown) {
          return; // the list is polled: redraw the Launcher only when it changed
        }
        shown = key;
        cards.forEach(c => c.dispose());
        cards = withTerminals.map((r, i) =>
          launcher.add({
            command: CommandIDs.openTerminal,
            args: { runtime: r.name },
            category: trans.__('Other'),
            rank: 10 + i
          })
        );
      };
      runtimes.runtimesChanged.connect(refresh);
      refresh();
    }
  }
};
