/** Same-origin REST calls through jupyter_server's auth and XSRF. */
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** An error carrying the HTTP status and the server's JSON body: `message` as the error's
 * message, the machine-readable `reason` (e.g. `no_free_device`) when the server sent one. */
export class APIError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly reason: string | null = null,
    readonly body: unknown = null
  ) {
    super(message);
  }
}

export async function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new APIError(String(error), 0);
  }
  const text = await response.text();
  let data: any = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const body = data && typeof data === 'object' ? data : null;
    const message =
      (body && (body.message || body.reason)) ||
      (typeof data === 'string' && data) ||
      response.statusText ||
      `HTTP ${response.status}`;
    const reason = body && typeof body.reason === 'string' ? body.reason : null;
    throw new APIError(String(message), response.status, reason, data);
  }
  return data as T;
}

/** `accel/runtimes/{name}/...` with each part escaped. */
export function runtimePath(name: string, ...rest: string[]): string {
  return URLExt.join('accel/runtimes', encodeURIComponent(name), ...rest);
}

export function formatBytes(bytes: number | undefined | null): string {
  if (bytes === undefined || bytes === null || isNaN(bytes)) {
    return '–';
  }
  const gb = bytes / 1024 ** 3;
  if (gb >= 1) {
    return `${gb.toFixed(1)} GB`;
  }
  return `${(bytes / 1024 ** 2).toFixed(0)} MB`;
}

export function formatDuration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || isNaN(seconds)) {
    return '–';
  }
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (h > 0) {
    return `${h}h ${m}m`;
  }
  if (m > 0) {
    return `${m}m ${s % 60}s`;
  }
  return `${s}s`;
}
