/** Restore outputs a notebook missed while away, from its runtime's output journal; show the
 * link state of its kernel ("reconnecting", "runtime lost") from the relay's notices.
 *
 * At execution time the execute_request's msg_id and its cell id are remembered in this browser
 * (`ExecutionCells`, never in the notebook, so running a cell does not modify the file). When a
 * notebook whose kernel is on a runtime opens, the journal is fetched; each execution is mapped
 * to its cell by that record, else by the same source text (`mapExecutions`), and the cell's
 * outputs are rebuilt from the journal in order. Executions still
 * running keep receiving their output live (by parent msg_id), each message once. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import type { ICodeCellModel } from '@jupyterlab/cells';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage, ServerConnection } from '@jupyterlab/services';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { fetchJournal, IJournalMessage, outputAction, outputsOf } from './journal';
import { isRemoteSpec } from '../names';
import { ExecutionCells, mapExecutions, sameOutputs } from './mapping';
import { LinkState } from './linkState';

function codeCells(panel: NotebookPanel): ICodeCellModel[] {
  const cells = panel.content.model?.cells;
  const out: ICodeCellModel[] = [];
  if (!cells) {
    return out;
  }
  for (let i = 0; i < cells.length; i++) {
    const c = cells.get(i);
    if (c.type === 'code') {
      out.push(c as ICodeCellModel);
    }
  }
  return out;
}

class Restorer {
  constructor(
    private _settings: ServerConnection.ISettings,
    private _executions: ExecutionCells
  ) {}

  watch(panel: NotebookPanel): void {
    const ctx = panel.sessionContext;
    let restoredFor = '';
    const onKernel = () => {
      const kernel = ctx.session?.kernel;
      if (!kernel) {
        return;
      }
      kernel.anyMessage.connect((_, args) => this._recordExecute(kernel, args));
      kernel.iopubMessage.connect((_, msg) => this._live(panel, msg));
      if (isRemoteSpec(kernel.name) && restoredFor !== kernel.id) {
        restoredFor = kernel.id;
        void this.restore(panel, kernel);
      }
    };
    void ctx.ready.then(onKernel);
    ctx.kernelChanged.connect(() => void ctx.ready.then(onKernel));
  }

  /** execute_request -> its cell id, remembered in the browser for the journal's executions. */
  private _recordExecute(kernel: Kernel.IKernelConnection, args: Kernel.IAnyMessageArgs): void {
    const msg = args.msg;
    if (args.direction !== 'send' || msg.header.msg_type !== 'execute_request') {
      return;
    }
    const cellId = (msg.metadata as { cellId?: unknown })?.cellId;
    if (typeof cellId === 'string' && cellId) {
      this._executions.remember(kernel.id, msg.header.msg_id, cellId);
    }
  }

  async restore(panel: NotebookPanel, kernel: Kernel.IKernelConnection): Promise<void> {
    let journal;
    try {
      journal = await fetchJournal(kernel.id, this._settings);
    } catch (e) {
      console.warn('jupyterlab-accel: no output journal for', kernel.id, e);
      panel.node.dataset.accelRestored = 'unavailable';
      return;
    }
    const byParent = new Map<string, IJournalMessage[]>();
    for (const m of journal.messages) {
      const pid = m.parent_header?.msg_id;
      if (pid) {
        byParent.set(pid, [...(byParent.get(pid) ?? []), m]);
      }
    }
    const cells = codeCells(panel);
    const cellOf = mapExecutions(
      journal.executions,
      cells.map(c => ({ id: c.id, source: c.sharedModel.getSource() })),
      this._executions.get(kernel.id)
    );
    let restored = 0;
    for (const ex of journal.executions) {
      const messages = byParent.get(ex.msg_id) ?? [];
      const cell = cells.find(c => c.id === cellOf.get(ex.msg_id));
      if (!cell || !messages.length) {
        continue;
      }
      const outputs = outputsOf(messages);
      const state: IFollowed = {
        cell,
        seen: new Set(messages.map(m => m.header.msg_id)),
        count: ex.execution_count
      };
      if (!sameOutputs(cell.outputs.toJSON(), outputs)) {
        cell.outputs.clear();
        outputs.forEach(o => cell!.outputs.add(o));
        restored++;
      }
      if (
        ex.execution_count !== null &&
        cell.executionCount !== ex.execution_count &&
        ex.status !== 'busy'
      ) {
        cell.executionCount = ex.execution_count;
      }
      if (ex.status === 'busy') {
        this._followed.set(ex.msg_id, state);
        this._setBusy(panel, cell, true);
      }
    }
    panel.node.dataset.accelRestored = String(restored);
  }

  /** Live output of executions started before this page (another session's requests). */
  private _live(panel: NotebookPanel, msg: KernelMessage.IIOPubMessage): void {
    const pid = (msg.parent_header as { msg_id?: string })?.msg_id;
    const followed = pid ? this._followed.get(pid) : undefined;
    if (!followed || followed.seen.has(msg.header.msg_id)) {
      return;
    }
    followed.seen.add(msg.header.msg_id);
    const a = outputAction(msg as any);
    const cell = followed.cell;
    if (a.kind === 'add') {
      cell.outputs.add(a.output);
    } else if (a.kind === 'clear') {
      cell.outputs.clear();
    } else if (a.kind === 'count') {
      followed.count = a.value;
    } else if (a.kind === 'status' && a.value === 'idle') {
      this._followed.delete(pid!);
      this._setBusy(panel, cell, false);
      if (followed.count !== undefined && followed.count !== null) {
        cell.executionCount = followed.count;
      }
    }
  }

  private _setBusy(panel: NotebookPanel, cell: ICodeCellModel, busy: boolean): void {
    const widget = panel.content.widgets.find(w => w.model === cell) as any;
    if (busy && widget?.setPrompt) {
      widget.setPrompt('*');
    } else if (!busy && widget?.setPrompt) {
      widget.setPrompt(cell.executionCount === null ? ' ' : String(cell.executionCount));
    }
  }

  private _followed = new Map<string, IFollowed>();
}

interface IFollowed {
  cell: ICodeCellModel;
  seen: Set<string>;
  count?: number | null;
}

export const restorePlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:restore',
  description: 'Restore outputs missed while away from the runtime journal; show link state.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ITranslator],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, translator: ITranslator | null) => {
    const trans: TranslationBundle = (translator ?? nullTranslator).load('jupyterlab_accel');
    const link = new LinkState(trans);
    let storage: Storage | null = null;
    try {
      storage = window.localStorage;
    } catch {
      storage = null; // storage disabled: memory only
    }
    const restorer = new Restorer(app.serviceManager.serverSettings, new ExecutionCells(storage));
    const watch = (panel: NotebookPanel) => {
      restorer.watch(panel);
      link.watch(panel);
    };
    tracker.forEach(watch);
    tracker.widgetAdded.connect((_, panel) => watch(panel));
  }
};
