/** Runtime > Connect to SSH host: any machine this server can ssh to becomes a runtime. The
 * server installs and starts the gateway there; this dialog shows each step, asks before
 * trusting an unknown host key (with its fingerprint) and asks for a key passphrase when the
 * host refuses the key. Passphrases go to the server for this connection only. */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, Notification, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';

import { IAccelRuntimes } from '../tokens';
import { FormBody } from '../views/forms';
import { IProviderStatus, sshAPI, waitSettled } from './model';

export const CONNECT_SSH = 'accel:connect-ssh';

const STEPS: { [step: string]: string } = {
  connecting: 'Connecting',
  checking: 'Checking the host',
  installing: 'Installing the gateway',
  starting: 'Starting the gateway'
};

function slug(host: string): string {
  const s = host
    .toLowerCase()
    .replace(/^.*@/, '')
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 50);
  return s || 'ssh-host';
}

async function ask(
  trans: TranslationBundle,
  title: string,
  body: FormBody,
  ok: string
): Promise<{ [k: string]: string | boolean } | null> {
  const result = await showDialog({
    title,
    body,
    buttons: [Dialog.cancelButton({ label: trans.__('Cancel') }), Dialog.okButton({ label: ok })]
  });
  return result.button.accept && result.value ? result.value : null;
}

export async function connectSSH(
  trans: TranslationBundle,
  runtimes: IAccelRuntimes
): Promise<void> {
  const hosts = await sshAPI.hosts().catch(() => [] as string[]);
  const form = await ask(
    trans,
    trans.__('Connect to SSH host'),
    new FormBody(
      [
        {
          name: 'host',
          label: trans.__('Host or alias from ~/.ssh/config'),
          placeholder: hosts.length ? hosts.join(', ') : 'gpu-box or user@host'
        },
        {
          name: 'python',
          label: trans.__('Python on the host (optional)'),
          placeholder: 'python3'
        },
        { name: 'display_name', label: trans.__('Display name (optional)') }
      ],
      trans.__(
        'The server connects with its user’s SSH keys and config, installs the gateway on the host if needed and starts it there.'
      )
    ),
    trans.__('Connect')
  );
  if (!form || !form.host) {
    return;
  }
  const host = String(form.host);
  let name = slug(host);
  const taken = new Set(runtimes.runtimes.map(r => r.name));
  for (let i = 2; taken.has(name); i++) {
    name = `${slug(host)}-${i}`;
  }
  const id = Notification.emit(trans.__('%1: connecting…', host), 'in-progress', {
    autoClose: false
  });
  const progress = (s: IProviderStatus) => {
    const label = s.step ? trans.__(STEPS[s.step] ?? s.step) : '';
    Notification.update({ id, message: `${host}: ${label}… ${s.message}`, type: 'in-progress' });
  };
  try {
    await sshAPI.add({
      name,
      host,
      ...(form.python ? { python: String(form.python) } : {}),
      ...(form.display_name ? { display_name: String(form.display_name) } : {})
    });
    for (;;) {
      const s = await waitSettled(name, progress);
      if (s.state === 'ready') {
        Notification.update({
          id,
          message: trans.__('Connected to %1', host),
          type: 'success',
          autoClose: 4000
        });
        await runtimes.refresh();
        return;
      }
      const next = await recover(trans, host, s);
      if (!next) {
        Notification.update({
          id,
          message: `${host}: ${s.message}`,
          type: 'error',
          autoClose: 8000
        });
        await sshAPI.remove(name).catch(() => undefined);
        await runtimes.refresh();
        return;
      }
      await sshAPI.connect(name, next);
    }
  } catch (error) {
    Notification.dismiss(id);
    await sshAPI.remove(name).catch(() => undefined);
    await showErrorMessage(trans.__('Could not connect to %1', host), error as Error);
  }
}

/** What to retry with after a stop: an accepted host key, a passphrase; null: give up. */
async function recover(
  trans: TranslationBundle,
  host: string,
  s: IProviderStatus
): Promise<{ accept_fingerprint?: string; passphrase?: string } | null> {
  if (s.reason === 'host_key_unknown' && s.details.fingerprint) {
    const ok = await ask(
      trans,
      trans.__('Unknown host key'),
      new FormBody(
        [],
        trans.__(
          'The authenticity of %1 can’t be established. Its %2 key fingerprint is %3. Accept only if this is the host’s real key.',
          host,
          s.details.key_type ?? '',
          s.details.fingerprint
        )
      ),
      trans.__('Accept and connect')
    );
    return ok ? { accept_fingerprint: s.details.fingerprint } : null;
  }
  if (s.reason === 'auth_refused') {
    const v = await ask(
      trans,
      trans.__('Authentication refused'),
      new FormBody(
        [{ name: 'passphrase', label: trans.__('Key passphrase'), type: 'password' }],
        trans.__('%1 If your key has a passphrase, enter it (it is not stored).', s.message)
      ),
      trans.__('Retry')
    );
    return v && v.passphrase ? { passphrase: String(v.passphrase) } : null;
  }
  await showErrorMessage(
    trans.__('Could not connect to %1', host),
    new Error(`${s.step ? trans.__(STEPS[s.step] ?? s.step) + ': ' : ''}${s.message}`)
  );
  return null;
}

export const sshPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:ssh',
  description: 'Runtime > Connect to SSH host: a runtime on any machine the server can ssh to.',
  autoStart: true,
  requires: [IAccelRuntimes],
  optional: [ITranslator],
  activate: (app: JupyterFrontEnd, runtimes: IAccelRuntimes, translator: ITranslator | null) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    app.commands.addCommand(CONNECT_SSH, {
      label: trans.__('Connect to SSH host…'),
      caption: trans.__('Install and start a runtime on a machine reachable by SSH'),
      execute: () => connectSSH(trans, runtimes)
    });
  }
};
