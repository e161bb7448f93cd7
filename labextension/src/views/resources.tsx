/** The Resources panel: per-device bars, per-kernel usage, a short history, RAM and disk. */
import { ReactWidget, UseSignal } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { formatBytes } from '../api';
import { MetricsModel } from '../models/metrics';
import { IMetricsSample } from '../tokens';
import { gpuTotals } from './status';

function Bar(props: { label: string; used: number; total: number; text?: string }): JSX.Element {
  const frac = props.total > 0 ? Math.min(1, props.used / props.total) : 0;
  return (
    <div className="jp-AccelBar">
      <div className="jp-AccelBar-label">
        <span>{props.label}</span>
        <span>{props.text ?? `${formatBytes(props.used)} / ${formatBytes(props.total)}`}</span>
      </div>
      <div className="jp-AccelBar-track">
        <div
          className={`jp-AccelBar-fill${frac > 0.9 ? ' jp-mod-warn' : ''}`}
          style={{ width: `${(frac * 100).toFixed(1)}%` }}
        />
      </div>
    </div>
  );
}

function History(props: {
  history: IMetricsSample[];
  trans: TranslationBundle;
}): JSX.Element | null {
  const points = props.history
    .map(
      s =>
        gpuTotals(s) ?? (s.host ? { used: s.host.memory_used, total: s.host.memory_total } : null)
    )
    .filter(Boolean) as { used: number; total: number }[];
  if (points.length < 2) {
    return null;
  }
  const w = 300;
  const h = 60;
  const step = w / (points.length - 1);
  const line = points
    .map(
      (p, i) => `${(i * step).toFixed(1)},${(h - (p.total ? p.used / p.total : 0) * h).toFixed(1)}`
    )
    .join(' ');
  return (
    <div className="jp-AccelHistory">
      <h3>{props.trans.__('Memory history (last %1 samples)', points.length)}</h3>
      <svg viewBox={`0 0 ${w} ${h}`} preserveAspectRatio="none" role="img">
        <polyline points={line} fill="none" strokeWidth="2" />
      </svg>
    </div>
  );
}

export class ResourcesPanel extends ReactWidget {
  constructor(
    private _model: MetricsModel,
    private _trans: TranslationBundle,
    /** The name a person reads for a runtime (its display name). */
    private _label: (runtime: string) => string = runtime => runtime
  ) {
    super();
    this.addClass('jp-AccelResources');
  }

  render(): JSX.Element {
    const trans = this._trans;
    return (
      <UseSignal signal={this._model.changed}>
        {() => {
          const s = this._model.sample;
          if (!s) {
            return (
              <p className="jp-AccelResources-empty">
                {this._model.runtime
                  ? trans.__('Waiting for metrics of runtime %1…', this._label(this._model.runtime))
                  : trans.__('The current notebook does not run on a runtime.')}
              </p>
            );
          }
          return (
            <div>
              <h2>{trans.__('Runtime: %1', this._label(this._model.runtime ?? ''))}</h2>
              {s.devices.map(d => (
                <div key={d.index} className="jp-AccelResources-device">
                  <h3>{`${d.index}: ${d.name}`}</h3>
                  <Bar label={trans.__('Memory')} used={d.memory_used} total={d.memory_total} />
                  {d.utilization !== null && d.utilization !== undefined && (
                    <Bar
                      label={trans.__('Utilization')}
                      used={d.utilization}
                      total={100}
                      text={`${d.utilization}%`}
                    />
                  )}
                </div>
              ))}
              <History history={this._model.history} trans={trans} />
              {s.host && (
                <div className="jp-AccelResources-host">
                  <Bar
                    label={trans.__('RAM')}
                    used={s.host.memory_used}
                    total={s.host.memory_total}
                  />
                  {s.host.disk_total ? (
                    <Bar
                      label={trans.__('Disk')}
                      used={s.host.disk_used ?? 0}
                      total={s.host.disk_total}
                    />
                  ) : null}
                </div>
              )}
              {!!s.kernels?.length && (
                <table className="jp-AccelTable">
                  <thead>
                    <tr>
                      <th>{trans.__('Kernel')}</th>
                      <th>{trans.__('RAM')}</th>
                      <th>{trans.__('GPU memory')}</th>
                      <th>{trans.__('Devices')}</th>
                    </tr>
                  </thead>
                  <tbody>
                    {s.kernels.map(k => (
                      <tr key={k.id}>
                        <td title={k.id}>{k.id.slice(0, 8)}</td>
                        <td>{formatBytes(k.rss)}</td>
                        <td>{formatBytes(k.gpu_memory)}</td>
                        <td>{(k.devices ?? []).join(', ')}</td>
                      </tr>
                    ))}
                  </tbody>
                </table>
              )}
            </div>
          );
        }}
      </UseSignal>
    );
  }
}
