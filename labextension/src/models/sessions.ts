/** Sessions on every runtime (`/accel/sessions`), termination and keep-alive. */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from '../api';
import { IAccelSession } from '../tokens';

export class SessionsModel {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  async list(): Promise<IAccelSession[]> {
    const sessions = await requestAPI<IAccelSession[]>('accel/sessions', {}, this.serverSettings);
    return Array.isArray(sessions) ? sessions : [];
  }

  terminate(kernelId: string): Promise<void> {
    return requestAPI<void>(
      `accel/sessions/${encodeURIComponent(kernelId)}`,
      { method: 'DELETE' },
      this.serverSettings
    );
  }

  keepalive(kernelId: string): Promise<unknown> {
    return requestAPI<unknown>(
      `accel/kernels/${encodeURIComponent(kernelId)}/keepalive`,
      { method: 'POST' },
      this.serverSettings
    );
  }
}
