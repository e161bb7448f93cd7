/**
 * Why a runtime refused: the server answers `{"message", "reason"}` (reason a stable word such
 * as `no_free_device`). The reason picks a translated sentence; the message goes in Details.
 * No parsing of message text.
 */
import type { TranslationBundle } from '@jupyterlab/translation';

/** What a refusal says, read from an error of `requestAPI` or of `@jupyterlab/services`. */
export interface IRefusal {
  reason: string | null;
  message: string;
  status: number | null;
}

/** The reasons runtimes document (docs/gateway.md, docs/frontend.md), each with its sentence. */
export const REASONS = [
  'no_free_device',
  'max_kernels',
  'no_such_kernel',
  'no_such_kernelspec',
  'no_such_runtime',
  'runtime_unavailable',
  'bad_request',
  'too_large',
  'state_full'
] as const;

export type Reason = (typeof REASONS)[number];

function isReason(value: unknown): value is Reason {
  return typeof value === 'string' && (REASONS as readonly string[]).includes(value);
}

/**
 * The reason and message of an error. `APIError` (this extension's requests) carries the JSON
 * body's `reason`. `ServerConnection.ResponseError` (kernel changes through the session) keeps
 * only the JSON `message`; there the reason is the HTTP reason phrase, which tornado sets to the
 * `reason` of the server's `HTTPError` (and which HTTP/2 drops: then only the message shows).
 */
export function refusalOf(error: unknown): IRefusal {
  const err = error as {
    message?: unknown;
    reason?: unknown;
    status?: unknown;
    response?: { status?: number; statusText?: string };
  } | null;
  const message = String(err?.message ?? error ?? '');
  const status =
    typeof err?.status === 'number'
      ? err.status
      : typeof err?.response?.status === 'number'
        ? err.response.status
        : null;
  let reason: string | null = null;
  if (err && typeof err.reason === 'string' && err.reason) {
    reason = err.reason;
  } else if (isReason(err?.response?.statusText)) {
    reason = err!.response!.statusText as string;
  }
  return { reason, message, status };
}

/** A translated sentence for a known reason; null for unknown or missing ones. */
export function reasonText(reason: string | null, trans: TranslationBundle): string | null {
  switch (reason) {
    case 'no_free_device':
      return trans.__('No free device: every accelerator of this runtime is in use.');
    case 'max_kernels':
      return trans.__('This runtime runs as many kernels as it allows: shut one down first.');
    case 'no_such_kernel':
      return trans.__('This runtime does not have that kernel.');
    case 'no_such_kernelspec':
      return trans.__('The runtime no longer offers this kernel.');
    case 'no_such_runtime':
      return trans.__('This runtime is not known to the server.');
    case 'runtime_unavailable':
      return trans.__('The runtime did not answer.');
    case 'bad_request':
      return trans.__('The runtime rejected the request.');
    case 'too_large':
      return trans.__('The request is too large for this runtime.');
    case 'state_full':
      return trans.__('The server could not record the kernel: its disk is full.');
    default:
      return null;
  }
}

/** What a person reads: the reason's sentence, else the server's own message. */
export function describeRefusal(error: unknown, trans: TranslationBundle): string {
  const refusal = refusalOf(error);
  return reasonText(refusal.reason, trans) ?? refusal.message;
}
