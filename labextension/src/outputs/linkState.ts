/** A notebook's link to its runtime as the server's relay reports it (iopub `accel_notice`
 * kinds reconnecting / runtime_lost / reconnected / kernel_dead): a notification per notebook
 * and `data-accel-link` on the panel (styled in CSS, read by tests). */
import { Notification } from '@jupyterlab/apputils';
import { NotebookPanel } from '@jupyterlab/notebook';
import { TranslationBundle } from '@jupyterlab/translation';

export const LINK_KINDS = ['reconnecting', 'runtime_lost', 'reconnected', 'kernel_dead'];

export class LinkState {
  constructor(private _trans: TranslationBundle) {}

  watch(panel: NotebookPanel): void {
    panel.sessionContext.iopubMessage.connect((_, msg) => {
      if ((msg.header.msg_type as string) !== 'accel_notice') {
        return;
      }
      const content = msg.content as unknown as { kind: string; message: string };
      if (LINK_KINDS.includes(content.kind)) {
        this.show(panel, content.kind, content.message);
      }
    });
    panel.disposed.connect(() => this._dismiss(panel));
  }

  show(panel: NotebookPanel, kind: string, message: string): void {
    const trans = this._trans;
    panel.node.dataset.accelLink = kind;
    const label = panel.title.label;
    const titles: Record<string, string> = {
      reconnecting: trans.__('Reconnecting'),
      runtime_lost: trans.__('Runtime lost'),
      reconnected: trans.__('Reconnected'),
      kernel_dead: trans.__('Kernel lost')
    };
    const text = `${titles[kind]} – ${label}: ${message}`;
    const type = kind === 'reconnected' ? 'success' : kind === 'reconnecting' ? 'warning' : 'error';
    const autoClose = kind === 'reconnected' ? 4000 : false;
    const old = this._ids.get(panel);
    if (old && Notification.manager.has(old)) {
      Notification.update({ id: old, message: text, type, autoClose });
    } else {
      this._ids.set(panel, Notification.emit(text, type, { autoClose }));
    }
  }

  private _dismiss(panel: NotebookPanel): void {
    const id = this._ids.get(panel);
    if (id) {
      Notification.dismiss(id);
      this._ids.delete(panel);
    }
  }

  private _ids = new Map<NotebookPanel, string>();
}
