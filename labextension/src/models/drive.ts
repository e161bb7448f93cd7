/**
 * A contents drive over the current runtime's workspace (`/accel/runtimes/{name}/contents`),
 * so the stock file browser, uploader (chunked) and editors work on the runtime's disk.
 */
import { URLExt } from '@jupyterlab/coreutils';
import { Contents, Drive, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { APIError, requestAPI, runtimePath } from '../api';

export const DRIVE_NAME = 'AccelRuntime';

const EMPTY: Contents.IModel = {
  name: '',
  path: '',
  type: 'directory',
  format: 'json',
  content: [],
  writable: false,
  created: '',
  last_modified: '',
  mimetype: ''
};

export class RuntimeDrive implements Contents.IDrive {
  readonly name = DRIVE_NAME;

  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** The runtime whose files this drive shows; null shows nothing. */
  get runtime(): string | null {
    return this._runtime;
  }

  set runtime(name: string | null) {
    if (name === this._runtime) {
      return;
    }
    this._inner?.dispose();
    this._inner = null;
    this._runtime = name;
    if (name) {
      this._inner = new Drive({
        name: DRIVE_NAME,
        serverSettings: this.serverSettings,
        apiEndpoint: runtimePath(name, 'contents')
      });
      this._inner.fileChanged.connect((_, args) => this._fileChanged.emit(args));
    }
    this._runtimeChanged.emit(name);
  }

  get runtimeChanged(): ISignal<this, string | null> {
    return this._runtimeChanged;
  }

  get fileChanged(): ISignal<this, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    this._isDisposed = true;
    this._inner?.dispose();
    Signal.clearData(this);
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    if (!this._inner) {
      // No runtime: an empty folder, so the browser shows nothing rather than an error.
      return EMPTY;
    }
    try {
      return await this._inner.get(localPath, options);
    } catch (error) {
      // A workspace root that is not found: the runtime has no contents API (a stock kernel
      // gateway). Show an empty folder rather than an error dialog on every refresh.
      const status = (error as ServerConnection.ResponseError)?.response?.status;
      if (status === 404 && !localPath.replace(/^\/+/, '')) {
        return EMPTY;
      }
      throw error;
    }
  }

  /** The runtime's raw file through the server's authenticated, streamed `/files` proxy. */
  async getDownloadUrl(localPath: string): Promise<string> {
    if (!this._runtime) {
      throw new APIError('No runtime: open a notebook that runs on a runtime', 400);
    }
    const url = URLExt.join(
      this.serverSettings.baseUrl,
      runtimePath(this._runtime, 'files', URLExt.encodeParts(localPath))
    );
    return `${url}?download=1`;
  }

  newUntitled(options?: Contents.ICreateOptions): Promise<Contents.IModel> {
    return this.drive().newUntitled(options);
  }

  delete(localPath: string): Promise<void> {
    return this.drive().delete(localPath);
  }

  rename(oldLocalPath: string, newLocalPath: string): Promise<Contents.IModel> {
    return this.drive().rename(oldLocalPath, newLocalPath);
  }

  save(localPath: string, options?: Partial<Contents.IModel>): Promise<Contents.IModel> {
    return this.drive().save(localPath, options);
  }

  copy(localPath: string, toLocalDir: string): Promise<Contents.IModel> {
    return this.drive().copy(localPath, toLocalDir);
  }

  createCheckpoint(localPath: string): Promise<Contents.ICheckpointModel> {
    return this.drive().createCheckpoint(localPath);
  }

  listCheckpoints(localPath: string): Promise<Contents.ICheckpointModel[]> {
    return this.drive()
      .listCheckpoints(localPath)
      .catch(() => []);
  }

  restoreCheckpoint(localPath: string, checkpointID: string): Promise<void> {
    return this.drive().restoreCheckpoint(localPath, checkpointID);
  }

  deleteCheckpoint(localPath: string, checkpointID: string): Promise<void> {
    return this.drive().deleteCheckpoint(localPath, checkpointID);
  }

  private drive(): Drive {
    if (!this._inner) {
      throw new APIError('No runtime: open a notebook that runs on a runtime', 400);
    }
    return this._inner;
  }

  private _runtime: string | null = null;
  private _inner: Drive | null = null;
  private _isDisposed = false;
  private _fileChanged = new Signal<this, Contents.IChangedArgs>(this);
  private _runtimeChanged = new Signal<this, string | null>(this);
}

/** A mount on a runtime, as `GET /accel/runtimes/{name}/mounts` lists it (docs/mounts.md). */
export interface IMount {
  id: string;
  source: string;
  type: string;
  mount_point: string;
  path: string;
  mode: 'fuse' | 'sync';
  live: boolean;
  label: string;
  state: string;
  pending_uploads: number;
  error: string | null;
  [key: string]: unknown;
}

/** `GET .../mounts/remotes`: what the Mount drive dialog offers. */
export interface IMountOptions {
  remotes: { name: string; type: string }[];
  fuse_available: boolean;
  fuse_problem: string | null;
  default_mode: string;
  default_mount_point: string;
  backend_types: string[];
}

/** `POST .../mounts`. `config` (rclone settings, may hold credentials) is sent once, never kept. */
export interface IMountRequest {
  source: string;
  mount_point: string;
  mode?: 'auto' | 'fuse' | 'sync';
  /** A setting given as `{from_secret: NAME}` is filled in by the server from the Secrets panel. */
  config?: { type: string; [key: string]: string | number | boolean | { from_secret: string } };
  readonly?: boolean;
  force_remount?: boolean;
  timeout?: number;
}

/** The mounts API of a runtime (`/accel/runtimes/{name}/mounts[...]`, proxied to its gateway). */
export class MountsModel {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  /** The configured remotes and defaults; null when the runtime does not support mounts (501/404). */
  async options(runtime: string): Promise<IMountOptions | null> {
    try {
      return await requestAPI<IMountOptions>(
        runtimePath(runtime, 'mounts', 'remotes'),
        {},
        this.serverSettings
      );
    } catch (error) {
      if (error instanceof APIError && (error.status === 501 || error.status === 404)) {
        return null;
      }
      throw error;
    }
  }

  async list(runtime: string): Promise<IMount[]> {
    const data = await requestAPI<IMount[]>(
      runtimePath(runtime, 'mounts'),
      {},
      this.serverSettings
    );
    return Array.isArray(data) ? data : [];
  }

  mount(runtime: string, body: IMountRequest): Promise<IMount> {
    return requestAPI<IMount>(
      runtimePath(runtime, 'mounts'),
      { method: 'POST', body: JSON.stringify(body) },
      this.serverSettings
    );
  }

  /** Returns once everything written so far is on the remote. */
  flush(runtime: string, id: string): Promise<IMount> {
    return requestAPI<IMount>(
      runtimePath(runtime, 'mounts', encodeURIComponent(id), 'flush'),
      { method: 'POST', body: '{}' },
      this.serverSettings
    );
  }

  unmount(runtime: string, id: string): Promise<void> {
    return requestAPI<void>(
      runtimePath(runtime, 'mounts', encodeURIComponent(id)),
      { method: 'DELETE' },
      this.serverSettings
    );
  }
}
