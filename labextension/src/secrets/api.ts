/** REST calls of the Secrets panel (names and grants only: the server never sends a value). */
import { requestAPI } from '../api';

export interface ISecret {
  name: string;
  notebooks: string[];
}

export interface ISecretRequest {
  id: string;
  runtime: string;
  kernel_id: string;
  notebook: string;
  name: string;
  created: number;
}

const secretPath = (name: string, ...rest: string[]) =>
  ['accel/secrets', encodeURIComponent(name), ...rest].join('/');

export const listSecrets = () => requestAPI<ISecret[]>('accel/secrets');

export const putSecret = (name: string, value: string) =>
  requestAPI<ISecret>(secretPath(name), { method: 'PUT', body: JSON.stringify({ value }) });

export const deleteSecret = (name: string) =>
  requestAPI<void>(secretPath(name), { method: 'DELETE' });

export const revokeNotebook = (name: string, path: string) =>
  requestAPI<ISecret>(`${secretPath(name, 'grants')}?path=${encodeURIComponent(path)}`, {
    method: 'DELETE'
  });

export const pendingRequests = () => requestAPI<ISecretRequest[]>('accel/secret-requests');

export const answerRequest = (id: string, allow: boolean) =>
  requestAPI<void>(`accel/secret-requests/${encodeURIComponent(id)}`, {
    method: 'POST',
    body: JSON.stringify({ allow })
  });
