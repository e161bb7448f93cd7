/**
 * Change runtime type logic, apart from any view: which kernel specs can serve an
 * accelerator/shape choice, and why a combination is unavailable.
 */
import type { KernelSpec } from '@jupyterlab/services';
import type { TranslationBundle } from '@jupyterlab/translation';

import type { Accelerator, IAccelChoice, IMetricsSample, IRuntime, Shape } from '../tokens';
import { parseSpecName } from '../names';

/** One kernel spec that can run a choice. */
export interface ICandidate {
  spec: string;
  displayName: string;
  runtime: string | null; // null: a local kernel of this server
  runtimeLabel: string;
  accelerator: Accelerator;
  shape: Shape;
  deviceName: string;
  deviceCount: number;
  freeMemory: number | null;
  pricePerHour: number | null;
}

function specAccel(spec: KernelSpec.ISpecModel): {
  runtime?: string;
  accelerator?: Accelerator;
  shape?: Shape;
} {
  const meta = (spec.metadata ?? {}) as any;
  return (meta.accel ?? {}) as any;
}

/** Every kernel spec usable as a runtime choice, with what it offers. */
export function listCandidates(
  specs: KernelSpec.ISpecModels | null,
  runtimes: IRuntime[],
  metrics: { [runtime: string]: IMetricsSample | null },
  preferredSpec: string | null,
  trans: TranslationBundle
): ICandidate[] {
  const all = Object.values(specs?.kernelspecs ?? {}).filter(Boolean) as KernelSpec.ISpecModel[];
  const wanted = parseSpecName(preferredSpec)?.spec ?? preferredSpec ?? '';
  const result: ICandidate[] = [];
  const seenRuntime = new Set<string>();
  // Preferred spec of each runtime first (same language/kernel as now), then the others.
  const ordered = [...all].sort((a, b) => {
    const sa = (parseSpecName(a.name)?.spec ?? a.name) === wanted ? 0 : 1;
    const sb = (parseSpecName(b.name)?.spec ?? b.name) === wanted ? 0 : 1;
    return sa - sb;
  });
  for (const spec of ordered) {
    const parsed = parseSpecName(spec.name);
    if (!parsed) {
      continue;
    }
    const runtime = runtimes.find(r => r.name === parsed.runtime);
    if (!runtime || !runtime.healthy || seenRuntime.has(runtime.name)) {
      continue;
    }
    seenRuntime.add(runtime.name);
    const meta = specAccel(spec);
    const info = runtime.info;
    const devices = info?.devices ?? [];
    const sample = metrics[runtime.name];
    const free = sample?.devices?.length
      ? sample.devices.reduce((n, d) => n + Math.max(0, d.memory_total - d.memory_used), 0)
      : null;
    result.push({
      spec: spec.name,
      displayName: spec.display_name,
      runtime: runtime.name,
      runtimeLabel: runtime.display_name || runtime.name,
      accelerator: (meta.accelerator ?? info?.accelerator ?? 'none') as Accelerator,
      shape: (meta.shape ?? info?.shape ?? 'standard') as Shape,
      deviceName: devices.length ? devices[0].name : trans.__('CPU only'),
      deviceCount: devices.length,
      freeMemory: free,
      pricePerHour: runtime.price_per_hour ?? null
    });
  }
  const hasRemoteNone = result.some(c => c.accelerator === 'none' && c.shape === 'standard');
  if (!hasRemoteNone) {
    const local =
      all.find(s => !parseSpecName(s.name) && s.name === wanted) ??
      all.find(s => !parseSpecName(s.name));
    if (local) {
      result.push({
        spec: local.name,
        displayName: local.display_name,
        runtime: null,
        runtimeLabel: trans.__('This server (local)'),
        accelerator: 'none',
        shape: 'standard',
        deviceName: trans.__('CPU only'),
        deviceCount: 0,
        freeMemory: null,
        pricePerHour: null
      });
    }
  }
  return result;
}

export function matching(
  candidates: ICandidate[],
  accelerator: Accelerator,
  shape: Shape
): ICandidate[] {
  return candidates.filter(c => c.accelerator === accelerator && c.shape === shape);
}

/** Why no runtime offers this combination; null when one does. */
export function unavailableReason(
  candidates: ICandidate[],
  runtimes: IRuntime[],
  accelerator: Accelerator,
  shape: Shape,
  trans: TranslationBundle
): string | null {
  if (matching(candidates, accelerator, shape).length) {
    return null;
  }
  const label =
    accelerator === 'gpu'
      ? trans.__('GPU')
      : accelerator === 'tpu'
        ? trans.__('TPU')
        : trans.__('CPU');
  const down = runtimes.filter(r => !r.healthy && r.info?.accelerator === accelerator);
  if (down.length) {
    return trans.__(
      'The %1 runtime "%2" is unreachable: %3',
      label,
      down[0].display_name || down[0].name,
      down[0].error ?? ''
    );
  }
  if (candidates.some(c => c.accelerator === accelerator)) {
    return shape === 'highmem'
      ? trans.__('No %1 runtime offers High-RAM', label)
      : trans.__('No %1 runtime offers the standard shape', label);
  }
  return trans.__('No connected runtime has a %1', label);
}

/** The candidate a saved choice points at: its runtime if still there, else any match. */
export function resolveChoice(candidates: ICandidate[], choice: IAccelChoice): ICandidate | null {
  const options = matching(candidates, choice.accelerator, choice.shape);
  return (
    options.find(c => c.spec === choice.kernel_spec) ??
    options.find(c => c.runtime === (choice.runtime ?? null)) ??
    options[0] ??
    null
  );
}

export function isChoice(value: unknown): value is IAccelChoice {
  const v = value as IAccelChoice;
  return (
    !!v && typeof v === 'object' && typeof v.accelerator === 'string' && typeof v.shape === 'string'
  );
}
