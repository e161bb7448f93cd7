/** Left-sidebar Files panel of the current runtime's workspace, with Mount drive. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import {
  createToolbarFactory,
  Dialog,
  IToolbarWidgetRegistry,
  setToolbar,
  showDialog,
  showErrorMessage
} from '@jupyterlab/apputils';
import {
  FileBrowser,
  IDefaultFileBrowser,
  IFileBrowserFactory,
  Uploader
} from '@jupyterlab/filebrowser';
import { ISettingRegistry } from '@jupyterlab/settingregistry';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { newFolderIcon, refreshIcon, LabIcon } from '@jupyterlab/ui-components';

import { DRIVE_NAME, IMountOptions, MountsModel, RuntimeDrive } from '../models/drive';
import { CommandIDs, IAccelRuntimes } from '../tokens';
import { MountDialogBody } from '../views/mountDialog';
import { RuntimeFilesPanel } from '../views/filesPanel';

const TOOLBAR = 'AccelRuntimeFiles';

const driveIcon = new LabIcon({
  name: 'jupyterlab-accel:drive',
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path class="jp-icon3" fill="#616161" d="M4 5h16a1 1 0 0 1 1 1v12a1 1 0 0 1-1 1H4a1 1 0 0 1-1-1V6a1 1 0 0 1 1-1zm1 9v3h14v-3H5zm11 1h2v1h-2v-1z"/></svg>'
});

/**
 * Point the stock file commands back at the default file browser.
 *
 * Launcher cards, File > New and the Console card create files in
 * `IFileBrowserFactory.tracker.currentWidget`: the browser focused last or, when none was,
 * the one created last. Ours is created after the default one, so without this the first
 * Launcher click of a fresh page made its notebook on the runtime drive. The tracker follows
 * focus events (lumino `FocusTracker`); a focus then a blur on the default browser's node makes
 * it current again without moving the page's focus. Done at start and whenever the runtime
 * Files panel is hidden, so only a person working in that panel acts on the runtime's disk.
 */
function makeCurrent(tracker: IFileBrowserFactory['tracker'], browser: FileBrowser | null): void {
  if (!browser || browser.isDisposed || tracker.currentWidget === browser) {
    return;
  }
  browser.node.dispatchEvent(new FocusEvent('focus'));
  browser.node.dispatchEvent(new FocusEvent('blur'));
}

async function mountDialog(
  mounts: MountsModel,
  runtime: string | null,
  trans: TranslationBundle,
  onChange: () => void,
  label: (runtime: string) => string
): Promise<void> {
  if (!runtime) {
    await showErrorMessage(
      trans.__('Mount drive'),
      trans.__('The current notebook runs locally: pick a runtime first.')
    );
    return;
  }
  let options: IMountOptions | null;
  try {
    options = await mounts.options(runtime);
  } catch (error) {
    await showErrorMessage(trans.__('Mount drive'), error as Error);
    return;
  }
  if (!options) {
    await showDialog({
      title: trans.__('Mount drive'),
      body: trans.__('This runtime does not support mounts.'),
      buttons: [Dialog.okButton({ label: trans.__('OK') })]
    });
    return;
  }
  // The body mounts, flushes and unmounts itself; the dialog stays open until Close.
  await showDialog({
    title: trans.__('Mount drive'),
    body: new MountDialogBody(mounts, runtime, options, trans, onChange, label(runtime)),
    buttons: [Dialog.cancelButton({ label: trans.__('Close') })]
  });
}

export const filesPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:files',
  description: "Files panel of the current runtime's workspace, with Mount drive.",
  autoStart: true,
  requires: [IAccelRuntimes, IFileBrowserFactory],
  // The default browser first, so ours can hand the stock commands back to it.
  optional: [IDefaultFileBrowser, IToolbarWidgetRegistry, ISettingRegistry, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    runtimes: IAccelRuntimes,
    factory: IFileBrowserFactory,
    defaultBrowser: IDefaultFileBrowser | null,
    toolbarRegistry: IToolbarWidgetRegistry | null,
    settingRegistry: ISettingRegistry | null,
    translator: ITranslator | null
  ) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const drive = new RuntimeDrive(app.serviceManager.serverSettings);
    app.serviceManager.contents.addDrive(drive);
    const mounts = new MountsModel(app.serviceManager.serverSettings);
    const browser = factory.createFileBrowser('accel-runtime-files', {
      driveName: DRIVE_NAME,
      restore: false
    });
    const label = (name: string) => {
      const runtime = runtimes.runtimes.find(r => r.name === name);
      return runtime?.display_name || name;
    };
    const panel = new RuntimeFilesPanel(browser, drive, trans, label);
    runtimes.runtimesChanged.connect(() => panel.relabel());
    const giveBack = () => makeCurrent(factory.tracker, defaultBrowser);
    giveBack();
    void app.restored.then(giveBack);
    panel.hidden.connect(giveBack);
    drive.runtime = runtimes.current;
    runtimes.currentChanged.connect((_, name) => (drive.runtime = name));

    const { commands } = app;
    commands.addCommand(CommandIDs.mountDrive, {
      label: trans.__('Mount drive'),
      icon: driveIcon,
      caption: trans.__('Mount cloud storage into the runtime'),
      execute: () =>
        mountDialog(
          mounts,
          drive.runtime,
          trans,
          () => void browser.model.refresh().catch(() => undefined),
          label
        )
    });
    commands.addCommand(CommandIDs.newFolder, {
      label: args => (args.toolbar ? '' : trans.__('New folder')),
      icon: newFolderIcon,
      caption: trans.__('New folder on the runtime'),
      isEnabled: () => !!drive.runtime,
      execute: () => browser.createNewDirectory()
    });
    commands.addCommand(CommandIDs.refreshFiles, {
      label: args => (args.toolbar ? '' : trans.__('Refresh')),
      icon: refreshIcon,
      caption: trans.__("Refresh the runtime's files"),
      execute: () => browser.model.refresh()
    });
    drive.runtimeChanged.connect(() => commands.notifyCommandChanged(CommandIDs.newFolder));

    if (toolbarRegistry && settingRegistry) {
      toolbarRegistry.addFactory(
        TOOLBAR,
        'uploader',
        (b: FileBrowser) => new Uploader({ model: b.model, translator: translator ?? undefined })
      );
      setToolbar(
        browser,
        createToolbarFactory(
          toolbarRegistry,
          settingRegistry,
          TOOLBAR,
          filesPlugin.id,
          translator ?? nullTranslator
        )
      );
    } else {
      browser.toolbar.addItem(
        'uploader',
        new Uploader({ model: browser.model, translator: translator ?? undefined })
      );
    }
    app.shell.add(panel, 'left', { rank: 150, type: 'Runtime files' });
  }
};
