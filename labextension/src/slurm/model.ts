/** Cluster (SLURM) jobs, `/accel/providers/slurm/jobs`, as the pending-job banner of a
 * notebook and Manage sessions show them; cancel. */
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from '../api';
import { parseSpecName } from '../names';

/** `details` of a job runtime's provider (providers/slurm.py `_details`). */
export interface IJobDetails {
  job_id: string | null;
  cluster_runtime: string;
  job_state: string | null;
  job_reason: string | null;
  node: string | null;
  time_limit?: string | null;
  ends_at?: string | null;
  time_left: number | null;
  queue_position?: number | null;
}

/** One entry of `GET /accel/providers/slurm/jobs`: the runtime of one job. */
export interface IJobRuntime {
  name: string;
  display_name: string;
  provider: {
    kind: string;
    state: 'starting' | 'ready' | 'stopped' | string;
    /** "Pending: Resources, 3rd in queue", "Job 4 on node1, 29 min left", ... */
    message: string;
    step: string | null;
    reason: string | null;
    details: IJobDetails;
  };
}

/** A job runtime is named `{cluster runtime}-{6 hex}` (providers/slurm_runtime.py). */
const JOB_SUFFIX = /^-[0-9a-f]{6}$/;

/** Whether kernel spec `kernelName` runs on a job of the cluster runtime `specName` names
 * (`accel--hpc-1a2b3c--python3` for `accel--hpc--python3`). */
export function isJobOf(kernelName: string | undefined | null, specName: string): boolean {
  const job = parseSpecName(kernelName);
  const cluster = parseSpecName(specName);
  if (!job || !cluster || job.spec !== cluster.spec) {
    return false;
  }
  const rest = job.runtime.slice(cluster.runtime.length);
  return job.runtime.startsWith(cluster.runtime) && JOB_SUFFIX.test(rest);
}

export class SlurmModel {
  constructor(
    readonly serverSettings: ServerConnection.ISettings = ServerConnection.makeSettings()
  ) {}

  async jobs(): Promise<IJobRuntime[]> {
    const jobs = await requestAPI<IJobRuntime[]>(
      'accel/providers/slurm/jobs',
      {},
      this.serverSettings
    );
    return Array.isArray(jobs) ? jobs : [];
  }

  /** Cancel a job, pending or running (its kernel start fails / its kernel ends). */
  cancel(name: string): Promise<IJobRuntime> {
    return requestAPI<IJobRuntime>(
      `accel/providers/slurm/jobs/${encodeURIComponent(name)}`,
      { method: 'DELETE' },
      this.serverSettings
    );
  }
}
