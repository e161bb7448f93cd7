/** Small form dialog bodies: Connect to runtime, Disconnect and delete, Mount drive. */
import { Dialog } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

export interface IField {
  name: string;
  label: string;
  type?: 'text' | 'password' | 'checkbox' | 'select';
  value?: string | boolean;
  options?: { value: string; label: string }[];
  placeholder?: string;
}

/** A vertical form; getValue() returns {name: value} (checkboxes as booleans). */
export class FormBody
  extends Widget
  implements Dialog.IBodyWidget<{ [name: string]: string | boolean }>
{
  constructor(fields: IField[], intro?: string) {
    super();
    this.addClass('jp-AccelForm');
    if (intro) {
      const p = document.createElement('p');
      p.textContent = intro;
      this.node.appendChild(p);
    }
    for (const f of fields) {
      const label = document.createElement('label');
      const caption = document.createElement('span');
      caption.textContent = f.label;
      let input: HTMLInputElement | HTMLSelectElement;
      if (f.type === 'select') {
        const select = document.createElement('select');
        for (const o of f.options ?? []) {
          const option = document.createElement('option');
          option.value = o.value;
          option.textContent = o.label;
          select.appendChild(option);
        }
        if (typeof f.value === 'string') {
          select.value = f.value;
        }
        input = select;
      } else {
        const el = document.createElement('input');
        el.type = f.type ?? 'text';
        if (f.type === 'checkbox') {
          el.checked = !!f.value;
        } else {
          el.value = typeof f.value === 'string' ? f.value : '';
          el.placeholder = f.placeholder ?? '';
        }
        el.autocomplete = 'off';
        input = el;
      }
      input.name = f.name;
      if (f.type === 'checkbox') {
        label.classList.add('jp-AccelForm-check');
        label.append(input, caption);
      } else {
        label.append(caption, input);
      }
      this._inputs.push(input);
      this.node.appendChild(label);
    }
  }

  getValue(): { [name: string]: string | boolean } {
    const out: { [name: string]: string | boolean } = {};
    for (const i of this._inputs) {
      out[i.name] =
        i instanceof HTMLInputElement && i.type === 'checkbox' ? i.checked : i.value.trim();
    }
    return out;
  }

  private _inputs: (HTMLInputElement | HTMLSelectElement)[] = [];
}

export function connectFields(trans: TranslationBundle): IField[] {
  return [
    { name: 'url', label: trans.__('Runtime URL'), placeholder: 'https://gpu-host:8899' },
    { name: 'token', label: trans.__('Token'), type: 'password' },
    { name: 'name', label: trans.__('Name'), placeholder: 'gpu-box' },
    { name: 'display_name', label: trans.__('Display name (optional)') }
  ];
}
