/**
 * The Runtime menu's commands: change runtime type (with the notebook's `metadata.accel`),
 * connect, restart, disconnect and delete. Menus are declared in schema/plugin.json.
 */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { INotebookTracker, NotebookPanel } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { ICandidate, isChoice, listCandidates, resolveChoice } from '../models/choice';
import { describeRefusal, refusalOf } from '../models/refusal';
import { parseSpecName } from '../names';
import { isJobOf } from '../slurm/model';
import {
  Accelerator,
  CommandIDs,
  IAccelChoice,
  IAccelRuntimes,
  IMetricsSample,
  Shape
} from '../tokens';
import { connectFields, FormBody } from '../views/forms';
import { RuntimeTypeBody } from '../views/runtimeDialog';

const METADATA_KEY = 'accel';

class RuntimeCommands {
  constructor(
    private _app: JupyterFrontEnd,
    private _runtimes: IAccelRuntimes,
    private _trans: TranslationBundle
  ) {}

  defaults: { accelerator: Accelerator; shape: Shape } = { accelerator: 'none', shape: 'standard' };

  /** Every spec usable as a choice, with free memory of GPU/TPU runtimes. */
  async candidates(current: string | null): Promise<ICandidate[]> {
    const specsManager = this._app.serviceManager.kernelspecs;
    const [runtimes] = await Promise.all([
      this._runtimes.refresh().catch(() => this._runtimes.runtimes),
      specsManager.refreshSpecs()
    ]);
    const metrics: { [name: string]: IMetricsSample | null } = {};
    await Promise.all(
      runtimes
        .filter(r => r.healthy && r.info?.devices?.length)
        .map(async r => (metrics[r.name] = await this._runtimes.metrics(r.name)))
    );
    return listCandidates(specsManager.specs, runtimes, metrics, current, this._trans);
  }

  async changeRuntime(panel: NotebookPanel): Promise<void> {
    const trans = this._trans;
    await panel.context.ready;
    const kernelName = panel.sessionContext.session?.kernel?.name ?? null;
    const saved = panel.model?.getMetadata(METADATA_KEY);
    const choice: IAccelChoice = isChoice(saved) ? saved : { ...this.defaults };
    const candidates = await this.candidates(kernelName);
    const body = new RuntimeTypeBody({
      candidates,
      runtimes: this._runtimes.runtimes,
      accelerator: choice.accelerator,
      shape: choice.shape,
      spec: kernelName,
      trans
    });
    const result = await showDialog({
      title: trans.__('Change runtime type'),
      body,
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Save') })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    if (!result.value) {
      await showErrorMessage(
        trans.__('No runtime'),
        trans.__('No runtime offers this combination.')
      );
      return;
    }
    await this.apply(panel, result.value).catch(() => undefined);
  }

  /** Switch the notebook's kernel through its session (PATCH /api/sessions) and remember it. */
  async apply(panel: NotebookPanel, candidate: ICandidate): Promise<void> {
    const trans = this._trans;
    const label = candidate.runtimeLabel;
    const sessionContext = panel.sessionContext;
    const work = (async () => {
      const previous = sessionContext.session?.kernel?.id;
      if (sessionContext.session?.kernel?.name !== candidate.spec) {
        let kernel;
        try {
          kernel = await sessionContext.changeKernel({ name: candidate.spec });
        } catch (error) {
          // The server kept the old kernel; the session context dropped it: reattach.
          if (previous) {
            await sessionContext.changeKernel({ id: previous }).catch(() => undefined);
          }
          throw error;
        }
        // on a cluster runtime the kernel runs on its job's runtime (slurm/model.ts)
        if (!kernel || (kernel.name !== candidate.spec && !isJobOf(kernel.name, candidate.spec))) {
          throw new Error(trans.__('the kernel did not start'));
        }
        await kernel.info; // the remote kernel answered
      }
      const value: IAccelChoice = {
        accelerator: candidate.accelerator,
        shape: candidate.shape,
        runtime: candidate.runtime ?? undefined,
        kernel_spec: candidate.spec
      };
      panel.model?.setMetadata(METADATA_KEY, value as any);
    })();
    let failure = '';
    Notification.promise(
      work.then(() => null),
      {
        pending: {
          message: trans.__('Starting a kernel on %1…', label),
          options: { autoClose: false }
        },
        success: {
          message: () => trans.__('Connected to %1', label),
          options: { autoClose: 3000 }
        },
        error: {
          message: (err: unknown) => {
            failure = refusalOf(err).message;
            return trans.__(
              'Could not start a kernel on %1: %2',
              label,
              describeRefusal(err, trans)
            );
          },
          options: {
            autoClose: false,
            actions: [
              {
                label: trans.__('Details'),
                callback: () =>
                  void showErrorMessage(trans.__('Could not start a kernel on %1', label), failure)
              }
            ]
          }
        }
      }
    );
    await work;
  }

  /** On open: come back to the saved choice, or give a new notebook the default accelerator. */
  async restore(panel: NotebookPanel): Promise<void> {
    await panel.context.ready;
    await panel.sessionContext.ready;
    const model = panel.model;
    if (!model || panel.isDisposed) {
      return;
    }
    const saved = model.getMetadata(METADATA_KEY);
    const current = panel.sessionContext.session?.kernel?.name ?? null;
    let choice: IAccelChoice | null = null;
    if (isChoice(saved)) {
      if (saved.kernel_spec && saved.kernel_spec === current) {
        return;
      }
      choice = saved;
    } else if (this.defaults.accelerator !== 'none' && isBlank(panel) && !parseSpecName(current)) {
      choice = { ...this.defaults };
    }
    if (!choice) {
      return;
    }
    const target = resolveChoice(await this.candidates(current), choice);
    if (target && target.spec !== current) {
      await this.apply(panel, target).catch(() => undefined);
    }
  }

  async connect(): Promise<void> {
    const trans = this._trans;
    const result = await showDialog({
      title: trans.__('Connect to runtime'),
      body: new FormBody(
        connectFields(trans),
        trans.__('The server keeps the token; it is never stored in the browser.')
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.okButton({ label: trans.__('Connect') })
      ]
    });
    if (!result.button.accept || !result.value) {
      return;
    }
    const v = result.value as { [k: string]: string };
    const name = v.name || hostName(v.url);
    try {
      const runtime = await this._runtimes.add({
        name,
        url: v.url,
        token: v.token,
        ...(v.display_name ? { display_name: v.display_name } : {})
      });
      Notification.success(
        trans.__('Connected to runtime %1', runtime.display_name || runtime.name),
        {
          autoClose: 4000
        }
      );
    } catch (error) {
      await showErrorMessage(trans.__('Could not connect to runtime'), error as Error);
    }
  }

  async disconnect(panel: NotebookPanel): Promise<void> {
    const trans = this._trans;
    const name = parseSpecName(panel.sessionContext.session?.kernel?.name)?.runtime ?? null;
    const runtime = name ? this._runtimes.runtimes.find(r => r.name === name) : undefined;
    const fields = runtime?.removable
      ? [
          {
            name: 'forget',
            label: trans.__('Also remove the runtime %1', runtime.display_name || runtime.name),
            type: 'checkbox' as const,
            value: true
          }
        ]
      : [];
    const result = await showDialog({
      title: trans.__('Disconnect and delete runtime'),
      body: new FormBody(
        fields,
        trans.__('Shut down the kernel of this notebook? Its variables are lost.')
      ),
      buttons: [
        Dialog.cancelButton({ label: trans.__('Cancel') }),
        Dialog.warnButton({ label: trans.__('Disconnect') })
      ]
    });
    if (!result.button.accept) {
      return;
    }
    try {
      await panel.sessionContext.shutdown();
      if (runtime && result.value?.forget) {
        await this._runtimes.remove(runtime.name);
      }
    } catch (error) {
      await showErrorMessage(trans.__('Disconnect failed'), error as Error);
    }
  }
}

function hostName(url: string): string {
  try {
    return new URL(url).hostname.replace(/[^A-Za-z0-9_-]/g, '-') || 'runtime';
  } catch {
    return 'runtime';
  }
}

/** A new notebook: a single empty cell. */
function isBlank(panel: NotebookPanel): boolean {
  const cells = panel.model?.cells;
  if (!cells) {
    return false;
  }
  return (
    cells.length === 0 || (cells.length === 1 && cells.get(0).sharedModel.getSource().trim() === '')
  );
}

export const runtimePlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:plugin',
  description: 'Runtime menu: change runtime type, connect, restart, disconnect.',
  autoStart: true,
  requires: [IAccelRuntimes, INotebookTracker],
  optional: [ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    runtimes: IAccelRuntimes,
    tracker: INotebookTracker,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const cmds = new RuntimeCommands(app, runtimes, trans);
    const current = () => tracker.currentWidget;
    const hasNotebook = () => !!tracker.currentWidget;

    app.commands.addCommand(CommandIDs.changeRuntime, {
      label: trans.__('Change runtime type…'),
      caption: trans.__('Choose the accelerator (None, GPU, TPU) this notebook runs on'),
      isEnabled: hasNotebook,
      execute: () => {
        const panel = current();
        return panel ? cmds.changeRuntime(panel) : undefined;
      }
    });
    app.commands.addCommand(CommandIDs.connectRuntime, {
      label: trans.__('Connect to runtime…'),
      execute: () => cmds.connect()
    });
    app.commands.addCommand(CommandIDs.restartRuntime, {
      label: trans.__('Restart runtime'),
      isEnabled: hasNotebook,
      execute: () => app.commands.execute('notebook:restart-kernel')
    });
    app.commands.addCommand(CommandIDs.deleteRuntime, {
      label: trans.__('Disconnect and delete runtime'),
      isEnabled: hasNotebook,
      execute: () => {
        const panel = current();
        return panel ? cmds.disconnect(panel) : undefined;
      }
    });
    tracker.currentChanged.connect(() => app.commands.notifyCommandChanged());

    tracker.widgetAdded.connect((_, panel) => void cmds.restore(panel).catch(console.warn));

    if (settingRegistry) {
      void settingRegistry.load(runtimePlugin.id).then(settings => {
        const read = () => {
          cmds.defaults = {
            accelerator: settings.get('defaultAccelerator').composite as Accelerator,
            shape: settings.get('defaultShape').composite as Shape
          };
        };
        read();
        settings.changed.connect(read);
      }, console.warn);
    }
  }
};
