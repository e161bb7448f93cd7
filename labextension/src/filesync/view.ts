/** Status bar item "Files: synced / syncing / N conflicts / over cap" for the current notebook,
 * and the dialog it opens (what happened, the log, Sync now). */
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { FileSyncModel, ISyncStatus } from './model';

export function syncLabel(status: ISyncStatus, trans: TranslationBundle): string {
  switch (status.state) {
    case 'synced':
    case 'idle':
      return trans.__('Files: synced');
    case 'syncing':
      return trans.__('Files: syncing…');
    case 'conflict':
      return trans._n('Files: %1 conflict', 'Files: %1 conflicts', status.conflicts?.length ?? 1);
    case 'over_cap':
      return trans.__('Files: over size cap');
    case 'unsupported':
      return trans.__('Files: not synced (not supported by this runtime)');
    case 'error':
      return trans.__('Files: sync failed');
    default:
      return '';
  }
}

export class FileSyncStatus extends Widget {
  constructor(
    private _model: FileSyncModel,
    private _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-AccelFileSync');
    this.node.title = _trans.__("The notebook's files on its runtime: click for details");
    this.node.addEventListener('click', () => void this.openDetails());
    _model.changed.connect(this.update, this);
    this.update();
  }

  update(): void {
    const status = this._model.status;
    this.node.textContent = status ? syncLabel(status, this._trans) : '';
    this.node.dataset.state = status?.state ?? '';
    this.node.classList.toggle(
      'jp-mod-warn',
      !!status && ['conflict', 'over_cap', 'error'].includes(status.state)
    );
  }

  async openDetails(): Promise<void> {
    const status = this._model.status;
    if (!status) {
      return;
    }
    const body = document.createElement('div');
    body.className = 'jp-AccelFileSync-details';
    const add = (text: string, cls = '') => {
      const p = document.createElement('p');
      p.textContent = text;
      if (cls) {
        p.className = cls;
      }
      body.appendChild(p);
    };
    add(syncLabel(status, this._trans));
    if (status.message) {
      add(status.message);
    }
    if (status.folder !== undefined) {
      add(this._trans.__('Folder: %1 (on %2)', status.folder || '/', status.runtime ?? ''));
    }
    for (const c of status.conflicts ?? []) {
      add(this._trans.__("Conflict: the runtime's copy is %1", c), 'jp-AccelFileSync-conflict');
    }
    const log = (status.log ?? []).slice(-15).reverse();
    if (log.length) {
      const ul = document.createElement('ul');
      for (const entry of log) {
        const li = document.createElement('li');
        const verb = {
          up: this._trans.__('to runtime'),
          down: this._trans.__('from runtime'),
          conflict: this._trans.__('conflict'),
          deleted_on_runtime: this._trans.__('deleted on runtime (kept here)'),
          refused: this._trans.__('refused')
        }[entry.action];
        li.textContent = `${entry.path}: ${verb}`;
        ul.appendChild(li);
      }
      body.appendChild(ul);
    }
    const result = await showDialog({
      title: this._trans.__("Notebook's files"),
      body: new Widget({ node: body }),
      buttons: [
        Dialog.cancelButton({ label: this._trans.__('Close') }),
        Dialog.okButton({ label: this._trans.__('Sync now') })
      ]
    });
    if (result.button.accept) {
      try {
        await this._model.syncNow();
      } catch (error) {
        void showErrorMessage(
          this._trans.__('File sync failed'),
          String((error as Error).message ?? error)
        );
      }
    }
  }
}
