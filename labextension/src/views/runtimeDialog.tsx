/** Body of the "Change runtime type" dialog: accelerator, shape, and which runtime. */
import { Dialog, ReactWidget } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useState } from 'react';

import { formatBytes } from '../api';
import { ICandidate, matching, unavailableReason } from '../models/choice';
import { Accelerator, ACCELERATORS, IRuntime, Shape, SHAPES } from '../tokens';

export interface IRuntimeTypeOptions {
  candidates: ICandidate[];
  runtimes: IRuntime[];
  accelerator: Accelerator;
  shape: Shape;
  spec: string | null;
  trans: TranslationBundle;
}

export class RuntimeTypeBody extends ReactWidget implements Dialog.IBodyWidget<ICandidate | null> {
  constructor(private _options: IRuntimeTypeOptions) {
    super();
    this.addClass('jp-AccelRuntimeType');
    const { candidates, accelerator, shape, spec } = _options;
    const current = candidates.find(c => c.spec === spec);
    this._value = current ?? matching(candidates, accelerator, shape)[0] ?? null;
  }

  getValue(): ICandidate | null {
    return this._value;
  }

  render(): JSX.Element {
    return (
      <RuntimeTypeForm
        {...this._options}
        initial={this._value}
        onChange={value => (this._value = value)}
      />
    );
  }

  private _value: ICandidate | null;
}

function RuntimeTypeForm(
  props: IRuntimeTypeOptions & {
    initial: ICandidate | null;
    onChange: (c: ICandidate | null) => void;
  }
): JSX.Element {
  const { candidates, runtimes, trans } = props;
  const [accelerator, setAccelerator] = useState<Accelerator>(
    props.initial?.accelerator ?? props.accelerator
  );
  const [shape, setShape] = useState<Shape>(props.initial?.shape ?? props.shape);
  const [spec, setSpec] = useState<string | null>(props.initial?.spec ?? null);

  const options = matching(candidates, accelerator, shape);
  const selected = options.find(c => c.spec === spec) ?? options[0] ?? null;
  props.onChange(selected);

  const accLabel: { [k in Accelerator]: string } = {
    none: trans.__('None (CPU)'),
    gpu: trans.__('GPU'),
    tpu: trans.__('TPU')
  };
  const shapeLabel: { [k in Shape]: string } = {
    standard: trans.__('Standard'),
    highmem: trans.__('High-RAM')
  };
  const reason = unavailableReason(candidates, runtimes, accelerator, shape, trans);

  return (
    <div className="jp-AccelRuntimeType-form">
      <fieldset>
        <legend>{trans.__('Hardware accelerator')}</legend>
        {ACCELERATORS.map(a => {
          const why = SHAPES.every(s => unavailableReason(candidates, runtimes, a, s, trans))
            ? unavailableReason(candidates, runtimes, a, 'standard', trans)
            : null;
          return (
            <label key={a} title={why ?? ''} className={why ? 'jp-mod-disabled' : ''}>
              <input
                type="radio"
                name="accel-accelerator"
                value={a}
                checked={accelerator === a}
                disabled={!!why}
                onChange={() => {
                  setAccelerator(a);
                  if (!matching(candidates, a, shape).length) {
                    setShape(SHAPES.find(s => matching(candidates, a, s).length) ?? shape);
                  }
                  setSpec(null);
                }}
              />
              {accLabel[a]}
              {why && <span className="jp-AccelRuntimeType-reason">{why}</span>}
            </label>
          );
        })}
      </fieldset>
      <fieldset>
        <legend>{trans.__('Runtime shape')}</legend>
        {SHAPES.map(s => {
          const why = unavailableReason(candidates, runtimes, accelerator, s, trans);
          return (
            <label key={s} title={why ?? ''} className={why ? 'jp-mod-disabled' : ''}>
              <input
                type="radio"
                name="accel-shape"
                value={s}
                checked={shape === s}
                disabled={!!why}
                onChange={() => {
                  setShape(s);
                  setSpec(null);
                }}
              />
              {shapeLabel[s]}
              {why && <span className="jp-AccelRuntimeType-reason">{why}</span>}
            </label>
          );
        })}
      </fieldset>
      {options.length > 1 && (
        <fieldset>
          <legend>{trans.__('Runtime')}</legend>
          {options.map(c => (
            <label key={c.spec} className="jp-AccelRuntimeType-runtime">
              <input
                type="radio"
                name="accel-runtime"
                value={c.spec}
                checked={selected?.spec === c.spec}
                onChange={() => setSpec(c.spec)}
              />
              <span className="jp-AccelRuntimeType-name">{c.runtimeLabel}</span>
              <span>{c.deviceCount > 1 ? `${c.deviceCount} × ${c.deviceName}` : c.deviceName}</span>
              <span>
                {c.freeMemory !== null ? trans.__('%1 free', formatBytes(c.freeMemory)) : ''}
              </span>
              <span>
                {c.pricePerHour !== null ? trans.__('$%1/hour', c.pricePerHour.toFixed(2)) : ''}
              </span>
            </label>
          ))}
        </fieldset>
      )}
      {options.length === 1 && selected && (
        <p className="jp-AccelRuntimeType-summary">
          {trans.__('Runs on %1 (%2)', selected.runtimeLabel, selected.deviceName)}
          {selected.freeMemory !== null
            ? ` · ${trans.__('%1 free', formatBytes(selected.freeMemory))}`
            : ''}
          {selected.pricePerHour !== null
            ? ` · ${trans.__('$%1/hour', selected.pricePerHour.toFixed(2))}`
            : ''}
        </p>
      )}
      {reason && <p className="jp-AccelRuntimeType-unavailable">{reason}</p>}
    </div>
  );
}
