/** Left-sidebar panel: the stock file browser over the current runtime's drive. */
import { FileBrowser } from '@jupyterlab/filebrowser';
import { TranslationBundle } from '@jupyterlab/translation';
import { folderIcon } from '@jupyterlab/ui-components';
import { Panel, Widget } from '@lumino/widgets';

import { RuntimeDrive } from '../models/drive';

export class RuntimeFilesPanel extends Panel {
  constructor(
    readonly browser: FileBrowser,
    private _drive: RuntimeDrive,
    private _trans: TranslationBundle
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

  private _onRuntime(): void {
    const runtime = this._drive.runtime;
    this._header.node.textContent = runtime
      ? this._trans.__('Runtime: %1', runtime)
      : this._trans.__('The current notebook runs locally: no runtime files to show.');
    this.toggleClass('jp-mod-noRuntime', !runtime);
    // Start at the workspace root of the new runtime.
    void this.browser.model.cd('/').catch(() => undefined);
  }

  private _header = new Widget();
}
