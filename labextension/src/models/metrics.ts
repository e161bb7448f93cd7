/** Live metrics of one runtime (the current notebook's), polled with back-off and standby. */
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI, runtimePath } from '../api';
import { IMetricsSample } from '../tokens';

/** How many samples the history keeps (the Resources panel's chart). */
const HISTORY = 120;

export class MetricsModel implements IDisposable {
  constructor(options: MetricsModel.IOptions = {}) {
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this._poll = new Poll({
      factory: () => this._fetch(),
      frequency: { interval: options.interval ?? 1000, backoff: true, max: 30000 },
      // Nothing to watch, or the page is hidden: stop asking.
      standby: () => !this._runtime || 'when-hidden',
      name: 'jupyterlab-accel:metrics'
    });
  }

  /** The runtime watched; null for a local kernel or no notebook. */
  get runtime(): string | null {
    return this._runtime;
  }

  set runtime(name: string | null) {
    if (name === this._runtime) {
      return;
    }
    this._runtime = name;
    this._sample = null;
    this._history = [];
    this._changed.emit();
    if (name) {
      void this._poll.refresh();
    }
  }

  set interval(ms: number) {
    this._poll.frequency = { ...this._poll.frequency, interval: Math.max(250, ms) };
  }

  /** The latest sample, null when there is nothing to show. */
  get sample(): IMetricsSample | null {
    return this._sample;
  }

  get history(): IMetricsSample[] {
    return this._history;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get isDisposed(): boolean {
    return this._poll.isDisposed;
  }

  refresh(): Promise<void> {
    return this._poll.refresh();
  }

  dispose(): void {
    this._poll.dispose();
    Signal.clearData(this);
  }

  private async _fetch(): Promise<void> {
    const runtime = this._runtime;
    if (!runtime) {
      return;
    }
    let sample: IMetricsSample | null = null;
    try {
      sample = await requestAPI<IMetricsSample>(runtimePath(runtime, 'metrics'), {}, this._settings);
    } catch (error) {
      if (runtime === this._runtime && this._sample) {
        this._sample = null;
        this._changed.emit();
      }
      throw error; // the Poll backs off
    }
    if (runtime !== this._runtime) {
      return; // the notebook changed while we waited
    }
    this._sample = sample;
    this._history.push(sample);
    if (this._history.length > HISTORY) {
      this._history.splice(0, this._history.length - HISTORY);
    }
    this._changed.emit();
  }

  private _settings: ServerConnection.ISettings;
  private _poll: Poll;
  private _runtime: string | null = null;
  private _sample: IMetricsSample | null = null;
  private _history: IMetricsSample[] = [];
  private _changed = new Signal<this, void>(this);
}

export namespace MetricsModel {
  export interface IOptions {
    serverSettings?: ServerConnection.ISettings;
    interval?: number;
  }
}
