/** The runtimes the server knows (`/accel/runtimes`), refreshed by a lumino Poll. */
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI, runtimePath } from '../api';
import { IMetricsSample, IRuntime } from '../tokens';

export class RuntimesModel implements IDisposable {
  constructor(serverSettings?: ServerConnection.ISettings) {
    this._settings = serverSettings ?? ServerConnection.makeSettings();
    this._poll = new Poll({
      factory: () => this._fetch(),
      frequency: { interval: 15000, backoff: true, max: 120000 },
      standby: 'when-hidden',
      name: 'jupyterlab-accel:runtimes'
    });
  }

  get runtimes(): IRuntime[] {
    return this._runtimes;
  }

  get changed(): ISignal<this, IRuntime[]> {
    return this._changed;
  }

  get serverSettings(): ServerConnection.ISettings {
    return this._settings;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  find(name: string | null | undefined): IRuntime | undefined {
    return this._runtimes.find(r => r.name === name);
  }

  /** Fetch now (e.g. before opening a dialog); resolves with the fresh list. */
  async refresh(): Promise<IRuntime[]> {
    await this._fetch();
    return this._runtimes;
  }

  async add(body: {
    name: string;
    url: string;
    token: string;
    display_name?: string;
  }): Promise<IRuntime> {
    const runtime = await requestAPI<IRuntime>(
      'accel/runtimes',
      { method: 'POST', body: JSON.stringify(body) },
      this._settings
    );
    await this.refresh();
    return runtime;
  }

  async remove(name: string): Promise<void> {
    await requestAPI<void>(runtimePath(name), { method: 'DELETE' }, this._settings);
    await this.refresh();
  }

  /** One metrics sample of a runtime, or null when it has none (stock gateway, down). */
  async metrics(name: string): Promise<IMetricsSample | null> {
    try {
      return await requestAPI<IMetricsSample>(runtimePath(name, 'metrics'), {}, this._settings);
    } catch {
      return null;
    }
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    const runtimes = await requestAPI<IRuntime[]>('accel/runtimes', {}, this._settings);
    this._runtimes = Array.isArray(runtimes) ? runtimes : [];
    this._changed.emit(this._runtimes);
  }

  private _settings: ServerConnection.ISettings;
  private _poll: Poll;
  private _runtimes: IRuntime[] = [];
  private _changed = new Signal<this, IRuntime[]>(this);
}
