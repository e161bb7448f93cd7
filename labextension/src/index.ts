import { JupyterFrontEndPlugin } from '@jupyterlab/application';

import { corePlugin } from './plugins/core';
import { restorePlugin } from './outputs/restore';
import { filesPlugin } from './plugins/files';
import { runtimePlugin } from './plugins/runtime';
import { sessionsPlugin } from './plugins/sessions';
import { statusPlugin } from './plugins/status';

const plugins: JupyterFrontEndPlugin<any>[] = [corePlugin, runtimePlugin, statusPlugin, filesPlugin, sessionsPlugin, restorePlugin];
export default plugins;
