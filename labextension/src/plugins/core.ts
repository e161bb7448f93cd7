/** Provides IAccelRuntimes: the runtime list and which runtime the current notebook uses. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker } from '@jupyterlab/notebook';

import { AccelRuntimes } from '../models/current';
import { RuntimesModel } from '../models/runtimes';
import { IAccelRuntimes } from '../tokens';

export const corePlugin: JupyterFrontEndPlugin<IAccelRuntimes> = {
  id: 'jupyterlab-accel:core',
  description: "The runtimes of this server and the current notebook's runtime.",
  autoStart: true,
  requires: [INotebookTracker],
  provides: IAccelRuntimes,
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker): IAccelRuntimes => {
    const model = new RuntimesModel(app.serviceManager.serverSettings);
    return new AccelRuntimes(model, tracker);
  }
};
