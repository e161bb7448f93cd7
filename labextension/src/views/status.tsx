/** Status bar item: GPU memory used/total and RAM of the current notebook's runtime. */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { formatBytes } from '../api';
import { MetricsModel } from '../models/metrics';
import { IMetricsSample } from '../tokens';

export function gpuTotals(sample: IMetricsSample): { used: number; total: number } | null {
  const devices = sample.devices ?? [];
  if (!devices.length) {
    return null;
  }
  return {
    used: devices.reduce((n, d) => n + (d.memory_used ?? 0), 0),
    total: devices.reduce((n, d) => n + (d.memory_total ?? 0), 0)
  };
}

export function statusText(sample: IMetricsSample, trans: TranslationBundle): string {
  const parts: string[] = [];
  const gpu = gpuTotals(sample);
  if (gpu) {
    const kind = sample.devices[0]?.name?.toLowerCase().includes('tpu')
      ? trans.__('TPU')
      : trans.__('GPU');
    parts.push(`${kind} ${formatBytes(gpu.used)} / ${formatBytes(gpu.total)}`);
  }
  if (sample.host) {
    parts.push(
      `${trans.__('RAM')} ${formatBytes(sample.host.memory_used)} / ${formatBytes(sample.host.memory_total)}`
    );
  }
  return parts.join(' · ');
}

export class MetricsStatus extends ReactWidget {
  constructor(
    private _model: MetricsModel,
    private _trans: TranslationBundle,
    private _onClick: () => void
  ) {
    super();
    this.addClass('jp-AccelStatus');
    this.node.title = _trans.__('Runtime resources: click for details');
  }

  render(): JSX.Element {
    return (
      <UseSignal signal={this._model.changed}>
        {() => {
          const sample = this._model.sample;
          const gpu = sample ? gpuTotals(sample) : null;
          const level = gpu && gpu.total ? gpu.used / gpu.total : 0;
          return (
            <span
              className={`jp-AccelStatus-text${level > 0.9 ? ' jp-mod-warn' : ''}`}
              data-runtime={this._model.runtime ?? ''}
              onClick={this._onClick}
            >
              {sample ? statusText(sample, this._trans) : ''}
            </span>
          );
        }}
      </UseSignal>
    );
  }
}
