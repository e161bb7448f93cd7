/** Status bar GPU/RAM item and the Resources panel it opens. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { MainAreaWidget } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { LabIcon } from '@jupyterlab/ui-components';

import { MetricsModel } from '../models/metrics';
import { CommandIDs, IAccelRuntimes } from '../tokens';
import { ResourcesPanel } from '../views/resources';
import { MetricsStatus } from '../views/status';

const chipIcon = new LabIcon({
  name: 'jupyterlab-accel:chip',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161"><path d="M9 9h6v6H9z"/><path d="M7 3v2H5a2 2 0 0 0-2 2v2H1v2h2v2H1v2h2v2a2 2 0 0 0 2 2h2v2h2v-2h2v2h2v-2h2v2h2v-2h2a2 2 0 0 0 2-2v-2h2v-2h-2v-2h2V9h-2V7a2 2 0 0 0-2-2h-2V3h-2v2h-2V3h-2v2H9V3H7zm-2 4h14v12H5V7z"/></g></svg>'
});

export const statusPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:status',
  description:
    "GPU memory of the current notebook's runtime in the status bar, and a Resources panel.",
  autoStart: true,
  requires: [IAccelRuntimes],
  optional: [IStatusBar, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    runtimes: IAccelRuntimes,
    statusBar: IStatusBar | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const model = new MetricsModel({ serverSettings: app.serviceManager.serverSettings });
    model.runtime = runtimes.current;
    runtimes.currentChanged.connect((_, name) => (model.runtime = name));

    const label = (name: string) =>
      runtimes.runtimes.find(r => r.name === name)?.display_name || name;
    let panel: MainAreaWidget<ResourcesPanel> | null = null;
    app.commands.addCommand(CommandIDs.openResources, {
      label: trans.__('Runtime resources'),
      caption: trans.__("GPU, RAM and disk of the current notebook's runtime"),
      icon: chipIcon,
      execute: () => {
        if (!panel || panel.isDisposed) {
          panel = new MainAreaWidget({ content: new ResourcesPanel(model, trans, label) });
          panel.id = 'jp-accel-resources';
          panel.title.label = trans.__('Resources');
          panel.title.icon = chipIcon;
          panel.title.closable = true;
        }
        if (!panel.isAttached) {
          app.shell.add(panel, 'main', { mode: 'split-right' });
        }
        app.shell.activateById(panel.id);
      }
    });

    if (statusBar) {
      const item = new MetricsStatus(
        model,
        trans,
        () => void app.commands.execute(CommandIDs.openResources)
      );
      statusBar.registerStatusItem('jupyterlab-accel:metrics', {
        item,
        align: 'left',
        rank: 100,
        isActive: () => model.sample !== null,
        activeStateChanged: model.changed
      });
    }

    if (settingRegistry) {
      void settingRegistry.load(statusPlugin.id).then(settings => {
        const read = () => (model.interval = settings.get('refreshRate').composite as number);
        read();
        settings.changed.connect(read);
      }, console.warn);
    }
  }
};
