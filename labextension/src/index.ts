import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { corePlugin } from './plugins/core';
import { fileSyncPlugin } from './filesync/plugin';
import { restorePlugin } from './outputs/restore';
import { filesPlugin } from './plugins/files';
import { runtimePlugin } from './plugins/runtime';
import { secretsPlugin } from './secrets/plugin';
import { sessionsPlugin } from './plugins/sessions';
import { slurmPlugin } from './slurm/plugin';
import { sshPlugin } from './ssh/plugin';
import { statusPlugin } from './plugins/status';
import { terminalsPlugin } from './terminals/plugin';

const plugins: JupyterFrontEndPlugin<any>[] = [
  corePlugin,
  runtimePlugin,
  statusPlugin,
  filesPlugin,
  sessionsPlugin,
  restorePlugin,
  fileSyncPlugin,
  terminalsPlugin,
  sshPlugin,
  secretsPlugin,
  slurmPlugin
];
export default plugins;
