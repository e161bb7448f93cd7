/** Every runtime's terminals (`GET /accel/terminals`) for Manage sessions; terminate one
 * through its runtime's route (`DELETE /accel/runtimes/{name}/api/terminals/{term}`). */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI, runtimePath } from '../api';

/** One entry of `GET /accel/terminals`. */
export interface IRuntimeTerminal {
  runtime: string;
  runtime_display_name: string;
  name: string;
  last_activity: string | null;
}

export class TerminalsOverview {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  async list(): Promise<IRuntimeTerminal[]> {
    const terminals = await requestAPI<IRuntimeTerminal[]>(
      'accel/terminals',
      {},
      this.serverSettings
    );
    return Array.isArray(terminals) ? terminals : [];
  }

  terminate(runtime: string, name: string): Promise<void> {
    return requestAPI<void>(
      runtimePath(runtime, 'api/terminals', encodeURIComponent(name)),
      { method: 'DELETE' },
      this.serverSettings
    );
  }
}
