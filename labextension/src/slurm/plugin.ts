/** A notebook whose kernel waits on a cluster job shows the job's state, reason and queue
 * position ("Pending: Resources, 3rd in queue") above its cells, with Cancel. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { ISessionContext, showErrorMessage } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { parseSpecName } from '../names';
import { IAccelRuntimes } from '../tokens';
import { IJobRuntime, SlurmModel } from './model';

const POLL_MS = 2000;
const WAITING = ['starting', 'initializing'];

/** The kernel spec a session context is starting, or null when it is not starting one.
 * JupyterLab keeps it in `_pendingKernelName` (no public getter); the notebook's saved
 * kernelspec is the fallback (opening a notebook on a cluster runtime). */
function startingSpec(context: ISessionContext, panel: NotebookPanel): string | null {
  if (!WAITING.includes(context.kernelDisplayStatus)) {
    return null;
  }
  const pending = (context as unknown as { _pendingKernelName?: unknown })._pendingKernelName;
  if (typeof pending === 'string' && pending) {
    return pending;
  }
  const saved = panel.model?.getMetadata('kernelspec') as { name?: string } | undefined;
  return saved?.name ?? null;
}

/** The banner of one notebook; `claims` keeps two notebooks from showing the same job. */
class PendingJobBanner extends Widget {
  constructor(
    private _panel: NotebookPanel,
    private _model: SlurmModel,
    private _runtimes: IAccelRuntimes | null,
    private _claims: Map<string, PendingJobBanner>,
    private _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-AccelPendingJob');
    this._text = document.createElement('span');
    this._text.className = 'jp-AccelPendingJob-text';
    this._cancel = document.createElement('button');
    this._cancel.className = 'jp-mod-styled jp-mod-warn jp-AccelPendingJob-cancel';
    this._cancel.textContent = this._trans.__('Cancel');
    this._cancel.onclick = () => void this._cancelJob();
    this.node.append(this._text, this._cancel);
    this.hide();
    const context = _panel.sessionContext;
    context.statusChanged.connect(this._changed, this);
    context.kernelChanged.connect(this._changed, this);
    this._changed();
  }

  dispose(): void {
    this._stop();
    super.dispose();
  }

  /** The cluster runtime the notebook is starting a kernel on, or null. */
  private _cluster(): string | null {
    const spec = startingSpec(this._panel.sessionContext, this._panel);
    const runtime = parseSpecName(spec)?.runtime ?? null;
    if (!runtime || !this._runtimes) {
      return runtime;
    }
    const known = this._runtimes.runtimes.find(r => r.name === runtime) as
      { provider?: { kind?: string } } | undefined;
    // unknown runtimes are asked about too (the list may be older than the runtime)
    return !known || known.provider?.kind === 'slurm-cluster' ? runtime : null;
  }

  private _changed(): void {
    if (this._cluster()) {
      if (this._timer === null) {
        this._timer = window.setInterval(() => void this._poll(), POLL_MS);
        void this._poll();
      }
    } else {
      this._stop();
    }
  }

  private _stop(): void {
    if (this._timer !== null) {
      window.clearInterval(this._timer);
      this._timer = null;
    }
    this._release();
    this._cancel.disabled = false;
    this.hide();
  }

  private _release(): void {
    if (this._job && this._claims.get(this._job) === this) {
      this._claims.delete(this._job);
    }
    this._job = null;
  }

  private async _poll(): Promise<void> {
    const cluster = this._cluster();
    if (!cluster) {
      this._stop();
      return;
    }
    let jobs: IJobRuntime[];
    try {
      jobs = await this._model.jobs();
    } catch {
      return; // the next poll tries again
    }
    if (this._timer === null) {
      return; // the kernel came (or the start failed) meanwhile
    }
    const mine = jobs.filter(j => j.provider.details?.cluster_runtime === cluster);
    let job = mine.find(j => j.name === this._job && j.provider.state !== 'ready');
    if (!job) {
      this._release();
      // the newest waiting job of that cluster no other notebook here shows
      job = mine
        .filter(j => j.provider.state === 'starting')
        .reverse()
        .find(j => {
          const owner = this._claims.get(j.name);
          return !owner || owner === this || owner.isDisposed;
        });
    }
    if (!job) {
      this.hide();
      return;
    }
    this._job = job.name;
    this._claims.set(job.name, this);
    this.node.dataset.job = job.name;
    this.node.dataset.state = job.provider.state;
    const id = job.provider.details?.job_id;
    const label = id ? this._trans.__('SLURM job %1', id) : this._trans.__('SLURM job');
    this._text.textContent = `${label}: ${job.provider.message}`;
    this._cancel.hidden = job.provider.state === 'stopped';
    this.show();
  }

  private async _cancelJob(): Promise<void> {
    const name = this._job;
    if (!name) {
      return;
    }
    this._cancel.disabled = true;
    this._text.textContent = this._trans.__('Cancelling the job…');
    try {
      await this._model.cancel(name);
    } catch (error) {
      this._cancel.disabled = false;
      await showErrorMessage(this._trans.__('Cancel failed'), error as Error);
    }
  }

  private _text: HTMLSpanElement;
  private _cancel: HTMLButtonElement;
  private _timer: number | null = null;
  private _job: string | null = null;
}

export const slurmPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:slurm',
  description: 'The pending cluster job of a notebook: state, reason, queue position, Cancel.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [IAccelRuntimes, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker,
    runtimes: IAccelRuntimes | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const model = new SlurmModel(app.serviceManager.serverSettings);
    const claims = new Map<string, PendingJobBanner>();
    const watch = (panel: NotebookPanel) => {
      const banner = new PendingJobBanner(panel, model, runtimes, claims, trans);
      panel.contentHeader.addWidget(banner);
      panel.disposed.connect(() => banner.dispose());
    };
    tracker.forEach(watch);
    tracker.widgetAdded.connect((_, panel) => watch(panel));
  }
};
