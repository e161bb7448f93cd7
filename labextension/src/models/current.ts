/** Which runtime the current notebook runs on, following the notebook tracker and kernel changes. */
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISignal, Signal } from '@lumino/signaling';

import { IAccelRuntimes, IMetricsSample, IRuntime } from '../tokens';
import { parseSpecName } from '../names';
import { RuntimesModel } from './runtimes';

export class AccelRuntimes implements IAccelRuntimes {
  constructor(
    private _model: RuntimesModel,
    tracker: INotebookTracker
  ) {
    _model.changed.connect((_, list) => this._runtimesChanged.emit(list));
    tracker.currentChanged.connect((_, panel) => this._follow(panel));
    this._follow(tracker.currentWidget);
  }

  get runtimes(): IRuntime[] {
    return this._model.runtimes;
  }

  get runtimesChanged(): ISignal<this, IRuntime[]> {
    return this._runtimesChanged;
  }

  get current(): string | null {
    return this._current;
  }

  get currentChanged(): ISignal<this, string | null> {
    return this._currentChanged;
  }

  refresh(): Promise<IRuntime[]> {
    return this._model.refresh();
  }

  add(body: {
    name: string;
    url: string;
    token: string;
    display_name?: string;
  }): Promise<IRuntime> {
    return this._model.add(body);
  }

  remove(name: string): Promise<void> {
    return this._model.remove(name);
  }

  metrics(name: string): Promise<IMetricsSample | null> {
    return this._model.metrics(name);
  }

  private _follow(panel: NotebookPanel | null): void {
    if (this._panel) {
      this._panel.sessionContext.kernelChanged.disconnect(this._update, this);
      this._panel.sessionContext.sessionChanged.disconnect(this._update, this);
    }
    this._panel = panel;
    if (panel) {
      panel.sessionContext.kernelChanged.connect(this._update, this);
      panel.sessionContext.sessionChanged.connect(this._update, this);
    }
    this._update();
  }

  private _update(): void {
    const kernel = this._panel?.sessionContext.session?.kernel;
    const runtime = parseSpecName(kernel?.name)?.runtime ?? null;
    if (runtime !== this._current) {
      this._current = runtime;
      this._currentChanged.emit(runtime);
    }
  }

  private _panel: NotebookPanel | null = null;
  private _current: string | null = null;
  private _runtimesChanged = new Signal<this, IRuntime[]>(this);
  private _currentChanged = new Signal<this, string | null>(this);
}
