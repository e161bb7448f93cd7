/**
 * Ids, interfaces and wire types shared by every module: the bottom of the import graph.
 * This module imports nothing from the rest of the extension.
 */
import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

export const PLUGIN_PREFIX = 'jupyterlab-accel';

export namespace CommandIDs {
  export const changeRuntime = 'accel:change-runtime';
  export const connectRuntime = 'accel:connect-runtime';
  export const manageSessions = 'accel:manage-sessions';
  export const restartRuntime = 'accel:restart-runtime';
  export const deleteRuntime = 'accel:disconnect-delete-runtime';
  export const openResources = 'accel:open-resources';
  export const openTerminal = 'accel:open-terminal';
  export const mountDrive = 'accel:mount-drive';
  export const refreshFiles = 'accel:refresh-files';
  export const newFolder = 'accel:new-folder';
}

export type Accelerator = 'none' | 'gpu' | 'tpu';
export type Shape = 'standard' | 'highmem';
export const ACCELERATORS: Accelerator[] = ['none', 'gpu', 'tpu'];
export const SHAPES: Shape[] = ['standard', 'highmem'];

/** `GET /api/accel/runtime` of a gateway, as relayed in `/accel/runtimes[].info`. */
export interface IDevice {
  index: number;
  kind: string;
  name: string;
  uuid?: string;
  memory_total: number;
}

export interface IRuntimeInfo {
  version?: string;
  accelerator: Accelerator;
  shape: Shape;
  devices: IDevice[];
  cpu_count?: number;
  memory_total?: number;
  disk_total?: number;
  disk_free?: number;
  workspace?: string;
  limits?: { [key: string]: unknown };
  features?: string[];
}

/** One entry of `GET /accel/runtimes`. */
export interface IRuntime {
  name: string;
  display_name: string;
  url: string;
  healthy: boolean;
  error?: string | null;
  embedded?: boolean;
  removable?: boolean;
  price_per_hour?: number | null;
  info: IRuntimeInfo | null;
}

/** One sample of `GET /accel/runtimes/{name}/metrics`. */
export interface IDeviceSample {
  index: number;
  name: string;
  memory_used: number;
  memory_total: number;
  utilization?: number | null;
  temperature?: number | null;
}

export interface IMetricsSample {
  time: number;
  devices: IDeviceSample[];
  host?: {
    memory_used: number;
    memory_total: number;
    cpu_percent?: number;
    disk_used?: number;
    disk_total?: number;
  };
  kernels?: { id: string; rss?: number; gpu_memory?: number; devices?: number[] }[];
}

/** One entry of `GET /accel/sessions`. */
export interface IAccelSession {
  kernel_id: string;
  session_id?: string | null;
  path?: string | null;
  kernel_name: string;
  runtime: string;
  started?: string | null;
  last_activity?: string | null;
  execution_state?: string | null;
  expires_at?: string | null;
  cost?: number | null;
}

/** The content of a kernel iopub message with `msg_type: "accel_notice"`. */
export interface INoticeContent {
  kind: 'cull_warning' | 'culled';
  reason: 'idle' | 'lifetime';
  expires_at?: string;
  seconds_left?: number;
  message: string;
}

/** What a notebook remembers in `metadata.accel`. */
export interface IAccelChoice {
  accelerator: Accelerator;
  shape: Shape;
  runtime?: string;
  kernel_spec?: string;
}

/** The runtimes and which one the current notebook runs on; provided by the core plugin. */
export interface IAccelRuntimes {
  /** The last list from `/accel/runtimes`. */
  readonly runtimes: IRuntime[];
  readonly runtimesChanged: ISignal<IAccelRuntimes, IRuntime[]>;
  /** Fetch the list now. */
  refresh(): Promise<IRuntime[]>;
  add(body: { name: string; url: string; token: string; display_name?: string }): Promise<IRuntime>;
  remove(name: string): Promise<void>;
  metrics(name: string): Promise<IMetricsSample | null>;
  /** The runtime of the current notebook's kernel; null for local kernels or none. */
  readonly current: string | null;
  readonly currentChanged: ISignal<IAccelRuntimes, string | null>;
}

export const IAccelRuntimes = new Token<IAccelRuntimes>(
  'jupyterlab-accel:IAccelRuntimes',
  "Remote runtimes and the current notebook's runtime."
);
