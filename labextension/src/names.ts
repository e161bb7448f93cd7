/**
 * The one home of the kernel spec name scheme of remote runtimes: `accel--{runtime}--{spec}`
 * (the server's `jupyterlab_accel/names.py` is its Python twin). Everything else imports it.
 */

export const SPEC_PREFIX = 'accel--';
const SEPARATOR = '--';

/** The namespaced kernel spec name of `spec` on `runtime`. */
export function specName(runtime: string, spec: string): string {
  return `${SPEC_PREFIX}${runtime}${SEPARATOR}${spec}`;
}

/** `accel--{runtime}--{spec}` -> {runtime, spec}; null for this server's own kernel specs. */
export function parseSpecName(
  name: string | undefined | null
): { runtime: string; spec: string } | null {
  if (!name || !name.startsWith(SPEC_PREFIX)) {
    return null;
  }
  const rest = name.slice(SPEC_PREFIX.length);
  const cut = rest.indexOf(SEPARATOR);
  if (cut <= 0 || cut + SEPARATOR.length >= rest.length) {
    return null;
  }
  return { runtime: rest.slice(0, cut), spec: rest.slice(cut + SEPARATOR.length) };
}

/** Whether a kernel (by its spec name) runs on a runtime rather than on this server. */
export function isRemoteSpec(name: string | undefined | null): boolean {
  return parseSpecName(name) !== null;
}
