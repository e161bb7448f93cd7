/** Manage sessions dialog and cull notices (kernel iopub `accel_notice`) with Keep alive. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, Notification, showDialog } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { KernelMessage } from '@jupyterlab/services';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { SessionsModel } from '../models/sessions';
import { CommandIDs, INoticeContent } from '../tokens';
import { SessionsBody } from '../views/sessionsDialog';

/** One notification per kernel, updated as notices arrive. */
class Notices {
  constructor(
    private _model: SessionsModel,
    private _trans: TranslationBundle
  ) {}

  watch(panel: NotebookPanel): void {
    panel.sessionContext.iopubMessage.connect((_, msg) => {
      if ((msg.header.msg_type as string) !== 'accel_notice') {
        return;
      }
      if (!['cull_warning', 'culled'].includes((msg.content as any).kind)) {
        return; // link notices: outputs/linkState.ts
      }
      const kernelId = panel.sessionContext.session?.kernel?.id;
      if (kernelId) {
        this.show(kernelId, panel.title.label, msg as KernelMessage.IIOPubMessage);
      }
    });
  }

  show(kernelId: string, label: string, msg: KernelMessage.IIOPubMessage): void {
    const trans = this._trans;
    const content = msg.content as unknown as INoticeContent;
    const text = `${label}: ${content.message}`;
    const old = this._ids.get(kernelId);
    if (content.kind === 'culled') {
      if (old) {
        Notification.dismiss(old);
      }
      this._ids.set(kernelId, Notification.error(text, { autoClose: false }));
      return;
    }
    const actions = [
      {
        label: trans.__('Keep alive'),
        caption: trans.__('Reset the idle timer of this runtime'),
        callback: () => {
          this._model.keepalive(kernelId).then(
            () => Notification.success(trans.__('%1 kept alive', label), { autoClose: 3000 }),
            e => Notification.error(trans.__('Keep alive failed: %1', e.message ?? String(e)))
          );
        }
      }
    ];
    if (old && Notification.manager.has(old)) {
      Notification.update({ id: old, message: text, type: 'warning', actions, autoClose: false });
    } else {
      this._ids.set(kernelId, Notification.warning(text, { actions, autoClose: false }));
    }
  }

  private _ids = new Map<string, string>();
}

export const sessionsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:sessions',
  description: 'Manage sessions on every runtime; cull notices with Keep alive.',
  autoStart: true,
  optional: [INotebookTracker, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    tracker: INotebookTracker | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const model = new SessionsModel(app.serviceManager.serverSettings);
    app.commands.addCommand(CommandIDs.manageSessions, {
      label: trans.__('Manage sessions…'),
      caption: trans.__('Every session on every runtime'),
      execute: () =>
        showDialog({
          title: trans.__('Active sessions'),
          body: new SessionsBody(model, trans),
          buttons: [Dialog.okButton({ label: trans.__('Close') })]
        })
    });
    if (tracker) {
      const notices = new Notices(model, trans);
      tracker.forEach(panel => notices.watch(panel));
      tracker.widgetAdded.connect((_, panel) => notices.watch(panel));
    }
  }
};
