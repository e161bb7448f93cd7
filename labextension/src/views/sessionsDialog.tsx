/** Body of "Manage sessions": every session on every runtime, each with Terminate. */
import { ReactWidget, showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import { formatDuration } from '../api';
import { SessionsModel } from '../models/sessions';
import { TerminalsOverview } from '../models/terminalsOverview';
import { SlurmModel } from '../slurm/model';
import { IAccelSession } from '../tokens';
import { SessionsExtras } from './sessionsExtras';

function secondsSince(iso: string | null | undefined): number | null {
  return iso ? (Date.now() - Date.parse(iso)) / 1000 : null;
}

function secondsUntil(iso: string | null | undefined): number | null {
  return iso ? (Date.parse(iso) - Date.now()) / 1000 : null;
}

function SessionsTable(props: { model: SessionsModel; trans: TranslationBundle }): JSX.Element {
  const { model, trans } = props;
  const [sessions, setSessions] = useState<IAccelSession[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const load = () =>
    model.list().then(
      s => {
        setSessions(s);
        setError(null);
      },
      e => setError(String(e.message ?? e))
    );
  useEffect(() => {
    void load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }, []);

  if (error) {
    return <p className="jp-AccelSessions-error">{error}</p>;
  }
  if (!sessions) {
    return <p>{trans.__('Loading sessions…')}</p>;
  }
  if (!sessions.length) {
    return <p className="jp-AccelSessions-empty">{trans.__('No active sessions.')}</p>;
  }
  return (
    <table className="jp-AccelTable jp-AccelSessions">
      <thead>
        <tr>
          <th>{trans.__('Notebook')}</th>
          <th>{trans.__('Runtime')}</th>
          <th>{trans.__('State')}</th>
          <th>{trans.__('Age')}</th>
          <th>{trans.__('Idle')}</th>
          <th>{trans.__('Time left')}</th>
          <th>{trans.__('Cost')}</th>
          <th />
        </tr>
      </thead>
      <tbody>
        {sessions.map(s => (
          <tr key={s.kernel_id} data-kernel-id={s.kernel_id}>
            <td title={s.kernel_id}>{s.path || s.kernel_id.slice(0, 8)}</td>
            <td>{s.runtime}</td>
            <td>{s.execution_state ?? ''}</td>
            <td>{formatDuration(secondsSince(s.started))}</td>
            <td>{formatDuration(secondsSince(s.last_activity))}</td>
            <td>
              {s.expires_at ? formatDuration(secondsUntil(s.expires_at)) : trans.__('no limit')}
            </td>
            <td>{s.cost !== null && s.cost !== undefined ? `$${s.cost.toFixed(2)}` : '–'}</td>
            <td>
              <button
                className="jp-mod-styled jp-mod-warn jp-AccelSessions-terminate"
                onClick={() =>
                  model
                    .terminate(s.kernel_id)
                    .then(load, e => showErrorMessage(trans.__('Terminate failed'), e))
                }
              >
                {trans.__('Terminate')}
              </button>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

export class SessionsBody extends ReactWidget {
  constructor(
    private _model: SessionsModel,
    private _trans: TranslationBundle
  ) {
    super();
    this.addClass('jp-AccelSessionsBody');
  }

  render(): JSX.Element {
    const settings = this._model.serverSettings;
    return (
      <>
        <SessionsTable model={this._model} trans={this._trans} />
        <SessionsExtras
          jobs={new SlurmModel(settings)}
          terminals={new TerminalsOverview(settings)}
          trans={this._trans}
        />
      </>
    );
  }
}
