/** REST of SSH host runtimes (`/accel/providers/ssh`): add, connect (passphrase, accept a
 * shown host key), delete; progress is the runtime's `provider` field. */
import { requestAPI } from '../api';

export interface IProviderStatus {
  kind: string;
  state: 'starting' | 'ready' | 'lost' | 'stopped';
  message: string;
  step: string | null;
  reason: string | null;
  details: { fingerprint?: string; key_type?: string; host?: string; [k: string]: unknown };
  host?: string;
}

export interface ISSHRuntime {
  name: string;
  display_name: string;
  provider: IProviderStatus;
}

export interface ISSHConnect {
  name: string;
  host: string;
  python?: string;
  display_name?: string;
  passphrase?: string;
}

const BASE = 'accel/providers/ssh';

function post<T>(path: string, body: unknown): Promise<T> {
  return requestAPI<T>(path, { method: 'POST', body: JSON.stringify(body) });
}

export const sshAPI = {
  hosts: async (): Promise<string[]> =>
    (await requestAPI<{ hosts: string[] }>(`${BASE}/hosts`)).hosts,
  add: (body: ISSHConnect): Promise<ISSHRuntime> => post(`${BASE}?wait=0`, body),
  connect: (
    name: string,
    body: { passphrase?: string; accept_fingerprint?: string }
  ): Promise<ISSHRuntime> => post(`${BASE}/${encodeURIComponent(name)}/connect`, body),
  status: (name: string): Promise<ISSHRuntime> =>
    requestAPI<ISSHRuntime>(`accel/runtimes/${encodeURIComponent(name)}`),
  remove: (name: string): Promise<unknown> =>
    requestAPI(`${BASE}/${encodeURIComponent(name)}`, { method: 'DELETE' })
};

/** Poll until ready or stopped (a failure, a host key to accept, a passphrase to ask). */
export async function waitSettled(
  name: string,
  onProgress: (s: IProviderStatus) => void,
  timeoutMs = 15 * 60 * 1000
): Promise<IProviderStatus> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rt = await sshAPI.status(name);
    onProgress(rt.provider);
    if (rt.provider.state === 'ready' || rt.provider.state === 'stopped') {
      return rt.provider;
    }
    if (Date.now() > deadline) {
      return rt.provider;
    }
    await new Promise(resolve => setTimeout(resolve, 500));
  }
}
