/** Secrets: a side panel (name, value, which notebooks may read it) and the grant prompt shown
 * when a notebook's kernel first calls `userdata.get(name)` ("analysis.ipynb wants HF_TOKEN"). */
import { JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { Dialog, showDialog, showErrorMessage } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator, TranslationBundle } from '@jupyterlab/translation';
import { lockIcon } from '@jupyterlab/ui-components';
import { Poll } from '@lumino/polling';
import { Widget } from '@lumino/widgets';

import {
  answerRequest,
  deleteSecret,
  ISecret,
  listSecrets,
  pendingRequests,
  putSecret,
  revokeNotebook
} from './api';

const PANEL_ID = 'jp-accel-secrets';

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Partial<HTMLElementTagNameMap[K]> = {},
  ...children: (Node | string)[]
): HTMLElementTagNameMap[K] {
  const node = Object.assign(document.createElement(tag), props);
  node.append(...children);
  return node;
}

/** The list of secrets with their grants, and a form to add or replace one. */
export class SecretsPanel extends Widget {
  constructor(private trans: TranslationBundle) {
    super();
    this.id = PANEL_ID;
    this.addClass('jp-AccelSecrets');
    this.title.icon = lockIcon;
    this.title.caption = trans.__('Secrets');
    this.node.style.padding = '8px';
    this.node.style.overflowY = 'auto';
    void this.refresh();
  }

  async refresh(): Promise<void> {
    let secrets: ISecret[] = [];
    try {
      secrets = await listSecrets();
    } catch (e) {
      this.render([], String(e));
      return;
    }
    this.render(secrets, null);
  }

  private render(secrets: ISecret[], error: string | null): void {
    const t = this.trans;
    const name = el('input', {
      placeholder: t.__('Name, e.g. HF_TOKEN'),
      className: 'jp-mod-styled'
    });
    const value = el('input', {
      type: 'password',
      placeholder: t.__('Value'),
      className: 'jp-mod-styled'
    });
    name.setAttribute('aria-label', t.__('Secret name'));
    value.setAttribute('aria-label', t.__('Secret value'));
    const add = el('button', {
      className: 'jp-mod-styled jp-mod-accept',
      textContent: t.__('Save')
    });
    add.onclick = async () => {
      try {
        await putSecret(name.value.trim(), value.value);
        value.value = '';
        await this.refresh();
      } catch (e) {
        void showErrorMessage(t.__('Secret not saved'), String(e));
      }
    };
    const rows = secrets.map(s => {
      const remove = el('button', { className: 'jp-mod-styled', textContent: t.__('Delete') });
      remove.onclick = async () => {
        await deleteSecret(s.name).catch(e => showErrorMessage(t.__('Not deleted'), String(e)));
        await this.refresh();
      };
      const grants = s.notebooks.map(path => {
        const revoke = el('button', {
          className: 'jp-mod-styled',
          textContent: '×',
          title: t.__('Revoke')
        });
        revoke.onclick = async () => {
          await revokeNotebook(s.name, path).catch(e =>
            showErrorMessage(t.__('Not revoked'), String(e))
          );
          await this.refresh();
        };
        return el('li', {}, path, ' ', revoke);
      });
      return el(
        'li',
        { className: 'jp-AccelSecrets-item' },
        el('strong', { textContent: s.name }),
        ' ',
        remove,
        grants.length
          ? el('ul', {}, ...grants)
          : el('div', { textContent: t.__('No notebook may read it yet (asked on first read).') })
      );
    });
    this.node.replaceChildren(
      el('h3', { textContent: t.__('Secrets') }),
      el('p', {
        textContent: t.__(
          'Read in a kernel with: from accel_gateway import userdata; userdata.get("NAME")'
        )
      }),
      ...(error ? [el('p', { textContent: error })] : []),
      el('ul', {}, ...rows),
      el('div', {}, name, value, add)
    );
  }
}

export const secretsPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyterlab-accel:secrets',
  description: 'Secrets panel and the grant prompt of a notebook reading a secret.',
  autoStart: true,
  optional: [ITranslator],
  activate: (app: JupyterFrontEnd, translator: ITranslator | null) => {
    const trans = (translator ?? nullTranslator).load('jupyterlab_accel');
    const panel = new SecretsPanel(trans);
    app.shell.add(panel, 'left', { rank: 950 });
    const asked = new Set<string>();
    const poll = new Poll({
      factory: async () => {
        for (const req of await pendingRequests()) {
          if (asked.has(req.id)) {
            continue;
          }
          asked.add(req.id);
          void showDialog({
            title: trans.__('Grant access to a secret?'),
            body: trans.__(
              '%1 (on runtime %2) wants to read the secret %3.',
              req.notebook,
              req.runtime,
              req.name
            ),
            buttons: [
              Dialog.cancelButton({ label: trans.__('Deny') }),
              Dialog.okButton({ label: trans.__('Allow') })
            ]
          }).then(async result => {
            await answerRequest(req.id, result.button.accept).catch(() => undefined);
            await panel.refresh();
          });
        }
      },
      frequency: { interval: 1500, backoff: true, max: 30000 },
      standby: 'never'
    });
    void poll.start();
  }
};
