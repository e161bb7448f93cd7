/**
 * Live metrics of one runtime (the current notebook's). The server's stream
 * (`/accel/runtimes/{name}/metrics/stream`, one upstream per runtime however many tabs watch) is
 * the source; while it is not open (refused, runtime down, a proxy without websockets) a lumino
 * Poll of the REST snapshot takes over, with back-off and standby, and the stream is tried
 * again with back-off.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';
import { IDisposable } from '@lumino/disposable';
import { Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI, runtimePath } from '../api';
import { IMetricsSample } from '../tokens';

/** How many samples the history keeps (the Resources panel's chart). */
const HISTORY = 120;
/** Seconds before the stream is tried again after it failed, doubling up to the max. */
const RETRY_MIN_MS = 2000;
const RETRY_MAX_MS = 30000;

export class MetricsModel implements IDisposable {
  constructor(options: MetricsModel.IOptions = {}) {
    this._settings = options.serverSettings ?? ServerConnection.makeSettings();
    this._useStream = options.stream ?? true;
    this._poll = new Poll({
      factory: () => this._fetch(),
      frequency: { interval: options.interval ?? 1000, backoff: true, max: 30000 },
      // Nothing to watch, the stream delivers, or the page is hidden: stop asking.
      standby: () => !this._runtime || this._streaming || 'when-hidden',
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
    this._closeStream();
    this._retryMs = RETRY_MIN_MS;
    this._changed.emit();
    if (name) {
      this._openStream();
      void this._poll.refresh();
    }
  }

  /** The Poll's interval (the fallback); the stream comes at the runtime's sampling rate. */
  set interval(ms: number) {
    this._poll.frequency = { ...this._poll.frequency, interval: Math.max(250, ms) };
  }

  /** Whether samples come from the stream now (else from the Poll). */
  get streaming(): boolean {
    return this._streaming;
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
    this._runtime = null;
    this._closeStream();
    this._poll.dispose();
    Signal.clearData(this);
  }

  private _openStream(): void {
    const runtime = this._runtime;
    if (!runtime || !this._useStream || this._socket) {
      return;
    }
    let url = URLExt.join(this._settings.wsUrl, runtimePath(runtime, 'metrics', 'stream'));
    if (this._settings.appendToken && this._settings.token) {
      url += `?token=${encodeURIComponent(this._settings.token)}`;
    }
    let socket: WebSocket;
    try {
      socket = new this._settings.WebSocket(url);
    } catch {
      this._scheduleRetry();
      return;
    }
    this._socket = socket;
    socket.onmessage = event => {
      if (socket !== this._socket) {
        return;
      }
      let data: unknown;
      try {
        data = JSON.parse(String(event.data));
      } catch {
        return;
      }
      if (!this._streaming) {
        this._streaming = true;
        this._retryMs = RETRY_MIN_MS;
        void this._poll.refresh(); // the Poll sees the stream and stands by
      }
      if (data && typeof data === 'object' && 'error' in data) {
        this._store(null); // the runtime is unreachable; the stream retries on its own
      } else if (
        data &&
        typeof data === 'object' &&
        Array.isArray((data as IMetricsSample).devices)
      ) {
        this._store(data as IMetricsSample);
      }
    };
    socket.onclose = () => {
      if (socket !== this._socket) {
        return;
      }
      this._socket = null;
      this._streaming = false;
      void this._poll.refresh(); // back to polling until the stream is back
      this._scheduleRetry();
    };
  }

  private _scheduleRetry(): void {
    if (!this._runtime || this._retryTimer) {
      return;
    }
    const delay = this._retryMs;
    this._retryMs = Math.min(RETRY_MAX_MS, this._retryMs * 2);
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      this._openStream();
    }, delay);
  }

  private _closeStream(): void {
    if (this._retryTimer) {
      clearTimeout(this._retryTimer);
      this._retryTimer = null;
    }
    const socket = this._socket;
    this._socket = null;
    this._streaming = false;
    if (socket) {
      socket.onmessage = null;
      socket.onclose = null;
      socket.close();
    }
  }

  private _store(sample: IMetricsSample | null): void {
    if (sample === null) {
      if (this._sample) {
        this._sample = null;
        this._changed.emit();
      }
      return;
    }
    this._sample = sample;
    this._history.push(sample);
    if (this._history.length > HISTORY) {
      this._history.splice(0, this._history.length - HISTORY);
    }
    this._changed.emit();
  }

  private async _fetch(): Promise<void> {
    const runtime = this._runtime;
    if (!runtime || this._streaming) {
      return;
    }
    let sample: IMetricsSample;
    try {
      sample = await requestAPI<IMetricsSample>(
        runtimePath(runtime, 'metrics'),
        {},
        this._settings
      );
    } catch (error) {
      if (runtime === this._runtime) {
        this._store(null);
      }
      throw error; // the Poll backs off
    }
    if (runtime !== this._runtime || this._streaming) {
      return; // the notebook changed, or the stream took over, while we waited
    }
    this._store(sample);
  }

  private _settings: ServerConnection.ISettings;
  private _useStream: boolean;
  private _poll: Poll;
  private _runtime: string | null = null;
  private _socket: WebSocket | null = null;
  private _streaming = false;
  private _retryMs = RETRY_MIN_MS;
  private _retryTimer: ReturnType<typeof setTimeout> | null = null;
  private _sample: IMetricsSample | null = null;
  private _history: IMetricsSample[] = [];
  private _changed = new Signal<this, void>(this);
}

export namespace MetricsModel {
  export interface IOptions {
    serverSettings?: ServerConnection.ISettings;
    /** Poll interval of the REST fallback, in ms. */
    interval?: number;
    /** Use the server's metrics stream (default); false: the Poll only. */
    stream?: boolean;
  }
}
