/** Where the current notebook's files stand on its runtime (`GET /accel/kernels/{id}/filesync`),
 * polled with back-off while a notebook on a remote runtime is in front. */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { APIError, requestAPI } from '../api';

export type SyncState =
  'idle' | 'syncing' | 'synced' | 'conflict' | 'over_cap' | 'unsupported' | 'error' | 'off';

export interface ISyncLogEntry {
  time: number;
  action: 'up' | 'down' | 'conflict' | 'deleted_on_runtime' | 'refused';
  path: string;
  bytes: number;
}

export interface ISyncStatus {
  state: SyncState;
  message: string;
  runtime?: string;
  folder?: string;
  files?: number;
  pushed?: number;
  pulled?: number;
  conflicts?: string[];
  deleted_on_runtime?: string[];
  log?: ISyncLogEntry[];
}

export function syncPath(kernelId: string): string {
  return URLExt.join('accel/kernels', encodeURIComponent(kernelId), 'filesync');
}

export class FileSyncModel implements IDisposable {
  constructor(serverSettings?: ServerConnection.ISettings) {
    this._settings = serverSettings ?? ServerConnection.makeSettings();
    this._poll = new Poll({
      factory: () => this._fetch(),
      frequency: { interval: 2000, backoff: true, max: 30000 },
      standby: () => !this._kernelId || 'when-hidden',
      name: 'jupyterlab-accel:filesync'
    });
  }

  get kernelId(): string | null {
    return this._kernelId;
  }

  set kernelId(id: string | null) {
    if (id === this._kernelId) {
      return;
    }
    this._kernelId = id;
    this._status = null;
    this._changed.emit();
    if (id) {
      void this._poll.refresh();
    }
  }

  /** null when the kernel's files are not synced (local kernel, sync off, no notebook). */
  get status(): ISyncStatus | null {
    return this._status;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  async syncNow(): Promise<void> {
    if (!this._kernelId) {
      return;
    }
    this._status = await requestAPI<ISyncStatus>(
      syncPath(this._kernelId),
      { method: 'POST' },
      this._settings
    );
    this._changed.emit();
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    const id = this._kernelId;
    if (!id) {
      return;
    }
    let status: ISyncStatus | null;
    try {
      status = await requestAPI<ISyncStatus>(syncPath(id), {}, this._settings);
    } catch (error) {
      if (error instanceof APIError && error.status === 404) {
        status = null;
      } else {
        throw error; // the Poll backs off
      }
    }
    if (id !== this._kernelId) {
      return;
    }
    if (status && status.state === 'off') {
      status = null;
    }
    if (JSON.stringify(status) !== JSON.stringify(this._status)) {
      this._status = status;
      this._changed.emit();
    }
  }

  private _settings: ServerConnection.ISettings;
  private _poll: Poll;
  private _kernelId: string | null = null;
  private _status: ISyncStatus | null = null;
  private _changed = new Signal<this, void>(this);
}
