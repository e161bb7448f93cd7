/**
 * Mount drive dialog body: the runtime's mounted folders (label, pending uploads, Flush,
 * Unmount) and a small form to mount a configured remote or S3-compatible storage.
 * Credentials go once into the POST body; they are cleared from the form and never stored.
 */
import { TranslationBundle } from '@jupyterlab/translation';
import { Message } from '@lumino/messaging';
import { Widget } from '@lumino/widgets';

import { APIError } from '../api';
import { IMount, IMountOptions, IMountRequest, MountsModel } from '../models/drive';

const S3 = '';
const POLL_MS = 2000;

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  cls?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (cls) {
    node.className = cls;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** A labelled input inside the form. */
function field(
  label: string,
  name: string,
  type = 'text',
  placeholder = ''
): [HTMLLabelElement, HTMLInputElement] {
  const wrap = el('label');
  const input = el('input');
  input.name = name;
  input.type = type;
  input.placeholder = placeholder;
  input.autocomplete = type === 'password' ? 'new-password' : 'off';
  wrap.append(el('span', undefined, label), input);
  return [wrap, input];
}

export class MountDialogBody extends Widget {
  constructor(
    private _model: MountsModel,
    private _runtime: string,
    private _options: IMountOptions,
    private _trans: TranslationBundle,
    private _onChange: () => void = () => undefined,
    runtimeLabel: string = _runtime
  ) {
    super();
    this.addClass('jp-AccelForm');
    this.addClass('jp-AccelMounts');
    const t = _trans;
    this.node.appendChild(
      el(
        'p',
        undefined,
        t.__(
          'Cloud storage in the workspace of runtime %1, like /content/drive on Colab.',
          runtimeLabel
        )
      )
    );
    if (_options.fuse_problem) {
      this.node.appendChild(
        el(
          'p',
          'jp-AccelMounts-note',
          t.__(
            'Live mounts are unavailable on this runtime (%1): folders are synced, not live.',
            _options.fuse_problem
          )
        )
      );
    }
    this.node.appendChild(el('h3', undefined, t.__('Mounted folders')));
    this.node.appendChild(this._list);

    this.node.appendChild(el('h3', undefined, t.__('Mount a folder')));
    const form = el('div', 'jp-AccelMounts-form');
    const sourceLabel = el('label');
    this._source.name = 'source';
    for (const r of _options.remotes) {
      const o = el('option', undefined, t.__('%1 (%2, configured on the runtime)', r.name, r.type));
      o.value = r.name;
      this._source.appendChild(o);
    }
    const s3 = el('option', undefined, t.__('S3-compatible storage (enter its settings)'));
    s3.value = S3;
    this._source.appendChild(s3);
    this._source.value = _options.remotes[0]?.name ?? S3;
    sourceLabel.append(el('span', undefined, t.__('Storage')), this._source);

    const [pathLabel, path] = field(
      t.__('Path inside the storage'),
      'path',
      'text',
      'folder/subfolder'
    );
    const [endpointLabel, endpoint] = field(
      t.__('Endpoint URL'),
      'endpoint',
      'text',
      'https://s3.example.com'
    );
    const [bucketLabel, bucket] = field(
      t.__('Bucket and path'),
      'bucket',
      'text',
      'my-bucket/data'
    );
    const [keyLabel, key] = field(t.__('Access key ID'), 'access_key_id');
    const [secretLabel, secret] = field(t.__('Secret access key'), 'secret_access_key', 'password');
    const [secretNameLabel, secretName] = field(
      t.__('…or the name of a secret holding it (Secrets panel)'),
      'secret_access_key_secret',
      'text',
      'S3_SECRET'
    );
    const [pointLabel, point] = field(
      t.__('Mount point (in the workspace)'),
      'mount_point',
      'text',
      'drive'
    );
    point.value = _options.default_mount_point || 'drive';
    this._inputs = { path, endpoint, bucket, key, secret, secretName, point };
    this._remoteFields = [pathLabel];
    this._s3Fields = [endpointLabel, bucketLabel, keyLabel, secretLabel, secretNameLabel];
    form.append(
      sourceLabel,
      pointLabel,
      pathLabel,
      endpointLabel,
      bucketLabel,
      keyLabel,
      secretLabel,
      secretNameLabel
    );
    this.node.appendChild(form);
    this._source.addEventListener('change', () => this._showFields());
    this._showFields();

    this._mountButton.className = 'jp-Button jp-mod-styled jp-mod-accept jp-AccelMounts-mount';
    this._mountButton.textContent = t.__('Mount');
    this._mountButton.addEventListener('click', () => void this._mount());
    const row = el('div', 'jp-AccelMounts-actions');
    row.append(this._mountButton, this._status);
    this.node.appendChild(row);
    this._status.className = 'jp-AccelMounts-status';
    this.node.appendChild(this._error);
    this._error.className = 'jp-AccelMounts-error';
    this._render([]);
    void this.refresh();
  }

  /** Reload the mounted folders. */
  async refresh(): Promise<void> {
    try {
      this._render(await this._model.list(this._runtime));
    } catch (error) {
      this._showError(error);
    }
  }

  dispose(): void {
    this._stopPoll();
    super.dispose();
  }

  protected onAfterAttach(msg: Message): void {
    super.onAfterAttach(msg);
    this._poll = window.setInterval(() => void this.refresh(), POLL_MS);
  }

  protected onBeforeDetach(msg: Message): void {
    this._stopPoll();
    super.onBeforeDetach(msg);
  }

  private _stopPoll(): void {
    if (this._poll) {
      window.clearInterval(this._poll);
      this._poll = 0;
    }
  }

  private _showFields(): void {
    const s3 = this._source.value === S3;
    this._s3Fields.forEach(f => (f.hidden = !s3));
    this._remoteFields.forEach(f => (f.hidden = s3));
  }

  /** The POST body from the form, or an error message for the user. */
  private _request(): IMountRequest | string {
    const t = this._trans;
    const v = (i: HTMLInputElement) => i.value.trim();
    const mount_point = v(this._inputs.point) || this._options.default_mount_point || 'drive';
    if (this._source.value !== S3) {
      const path = v(this._inputs.path).replace(/^\/+/, '');
      return { source: `${this._source.value}:${path}`, mount_point, mode: 'auto' };
    }
    const bucket = v(this._inputs.bucket).replace(/^\/+/, '');
    if (!v(this._inputs.endpoint) || !bucket) {
      return t.__('Enter the endpoint URL and the bucket.');
    }
    const config: IMountRequest['config'] = {
      type: 's3',
      provider: 'Other',
      endpoint: v(this._inputs.endpoint)
    };
    if (v(this._inputs.key)) {
      config.access_key_id = v(this._inputs.key);
    }
    if (this._inputs.secret.value) {
      config.secret_access_key = this._inputs.secret.value;
    } else if (v(this._inputs.secretName)) {
      config.secret_access_key = { from_secret: v(this._inputs.secretName) };
    }
    return { source: `user:${bucket}`, mount_point, mode: 'auto', config };
  }

  private async _mount(): Promise<void> {
    const body = this._request();
    if (typeof body === 'string') {
      this._showError(body);
      return;
    }
    await this._busy(this._trans.__('Mounting %1…', body.mount_point), async () => {
      await this._model.mount(this._runtime, body);
      this._inputs.secret.value = ''; // sent once; not kept in the page
    });
  }

  private async _busy(message: string, work: () => Promise<unknown>): Promise<void> {
    this._error.textContent = '';
    this._status.textContent = message;
    this._isBusy = true;
    this.node.querySelectorAll('button').forEach(b => (b.disabled = true));
    try {
      await work();
      this._status.textContent = '';
      this._onChange();
    } catch (error) {
      this._status.textContent = '';
      this._showError(error);
    } finally {
      this._isBusy = false;
      this.node.querySelectorAll('button').forEach(b => (b.disabled = false));
      await this.refresh();
    }
  }

  private _showError(error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    this._error.textContent = this._trans.__('Error: %1', message);
    // The gateway's machine-readable cause (e.g. rclone_missing), for styling and tests.
    this._error.dataset.reason = (error instanceof APIError && error.reason) || '';
  }

  private _render(mounts: IMount[]): void {
    const t = this._trans;
    this._list.replaceChildren();
    if (!mounts.length) {
      this._list.appendChild(el('p', 'jp-AccelMounts-empty', t.__('No folders mounted.')));
      return;
    }
    const table = el('table', 'jp-AccelTable');
    const head = el('tr');
    for (const h of [t.__('Folder'), t.__('Source'), t.__('Status'), t.__('Pending uploads'), '']) {
      head.appendChild(el('th', undefined, h));
    }
    table.appendChild(head);
    for (const m of mounts) {
      const row = el('tr', 'jp-AccelMounts-row');
      row.dataset.mountId = m.id;
      row.appendChild(el('td', 'jp-AccelMounts-point', m.mount_point));
      row.appendChild(el('td', undefined, m.source));
      const state = m.state === 'mounted' ? m.label : `${m.label} · ${m.state}`;
      const status = el('td', 'jp-AccelMounts-label', state);
      if (m.error) {
        status.title = m.error;
        status.appendChild(el('div', 'jp-AccelMounts-error', m.error));
      }
      row.appendChild(status);
      row.appendChild(el('td', 'jp-AccelMounts-pending', String(m.pending_uploads ?? 0)));
      const actions = el('td');
      const flush = el(
        'button',
        'jp-Button jp-mod-styled jp-mod-reject jp-AccelMounts-flush',
        t.__('Flush')
      );
      flush.title = t.__('Upload everything written so far');
      flush.addEventListener(
        'click',
        () =>
          void this._busy(t.__('Flushing %1…', m.mount_point), () =>
            this._model.flush(this._runtime, m.id)
          )
      );
      const unmount = el(
        'button',
        'jp-Button jp-mod-styled jp-mod-warn jp-AccelMounts-unmount',
        t.__('Unmount')
      );
      unmount.addEventListener(
        'click',
        () =>
          void this._busy(t.__('Unmounting %1…', m.mount_point), () =>
            this._model.unmount(this._runtime, m.id)
          )
      );
      flush.disabled = unmount.disabled = this._isBusy;
      actions.append(flush, unmount);
      row.appendChild(actions);
      table.appendChild(row);
    }
    this._list.appendChild(table);
  }

  private _list = el('div', 'jp-AccelMounts-list');
  private _source = el('select');
  private _inputs: { [k: string]: HTMLInputElement };
  private _remoteFields: HTMLElement[];
  private _s3Fields: HTMLElement[];
  private _mountButton = el('button');
  private _status = el('span');
  private _error = el('div');
  private _poll = 0;
  private _isBusy = false;
}
