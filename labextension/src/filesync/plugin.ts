/** The notebook's files follow it to the runtime: a status item for the current notebook. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';
import { IStatusBar } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';

import { FileSyncModel } from './model';
import { FileSyncStatus } from './view';

export const fileSyncPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:filesync',
  description: "Shows whether the current notebook's files are in step with its runtime.",
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IStatusBar, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    notebooks: INotebookTracker,
    statusBar: IStatusBar | null,
    translator: ITranslator | null
  ) => {
    if (!statusBar) {
      return;
    }
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const model = new FileSyncModel(app.serviceManager.serverSettings);
    const follow = () => {
      const ctx = notebooks.currentWidget?.sessionContext;
      model.kernelId = ctx?.session?.kernel?.id ?? null;
    };
    let watched: any = null;
    notebooks.currentChanged.connect(() => {
      if (watched) {
        watched.kernelChanged.disconnect(follow);
      }
      watched = notebooks.currentWidget?.sessionContext ?? null;
      if (watched) {
        watched.kernelChanged.connect(follow);
      }
      follow();
    });
    const item = new FileSyncStatus(model, trans);
    statusBar.registerStatusItem('jupyterlab-accel:filesync', {
      item,
      align: 'left',
      rank: 110,
      isActive: () => model.status !== null,
      activeStateChanged: model.changed
    });
  }
};
