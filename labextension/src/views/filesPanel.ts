/** Left-sidebar panel: the stock file browser over the current runtime's drive. */
import { FileBrowser } from '@jupyterlab/filebrowser';
import { TranslationBundle } from '@jupyterlab/translation';
import { folderIcon } from '@jupyterlab/ui-components';
import { Message } from '@lumino/messaging';
import { ISignal, Signal } from '@lumino/signaling';
import { Panel, Widget } from '@lumino/widgets';

import { RuntimeDrive } from '../models/drive';

export class RuntimeFilesPanel extends Panel {
  constructor(
    readonly browser: FileBrowser,
    private _drive: RuntimeDrive,
    private _trans: TranslationBundle,
    /** The name a person reads for a runtime (its display name). */
    private _label: (runtime: string) => string = runtime => runtime
  ) {
    super();
    this.id = 'jp-accel-files';
    this.addClass('jp-AccelFiles');
    this.title.icon = folderIcon;
    this.title.caption = _trans.__('Runtime files');
    this._header.addClass('jp-AccelFiles-header');
    this.addWidget(this._header);
    this.addWidget(browser);
    _drive.runtimeChanged.connect(this._onRuntime, this);
    this._onRuntime();
  }

  /** Show the header again, e.g. after the runtime list brought display names. */
  relabel(): void {
    const runtime = this._drive.runtime;
    if (runtime) {
      this._header.node.textContent = this._trans.__('Runtime: %1', this._label(runtime));
    }
  }

  protected onAfterHide(msg: Message): void {
    super.onAfterHide(msg);
    this._hidden.emit();
  }

  /** Emitted when the panel stops being shown (another sidebar tab, or the sidebar closed). */
  get hidden(): ISignal<this, void> {
    return this._hidden;
  }

  private _onRuntime(): void {
    const runtime = this._drive.runtime;
    this._header.node.textContent = runtime
      ? this._trans.__('Runtime: %1', this._label(runtime))
      : this._trans.__('The current notebook runs locally: no runtime files to show.');
    this.toggleClass('jp-mod-noRuntime', !runtime);
    // Start at the workspace root of the new runtime.
    void this.browser.model.cd('/').catch(() => undefined);
  }

  private _header = new Widget();
  private _hidden = new Signal<this, void>(this);
}
