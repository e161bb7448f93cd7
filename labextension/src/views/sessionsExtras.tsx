/** Manage sessions, beside the kernels: cluster jobs (job id, state, node, time left, Cancel)
 * and the runtimes' terminals (name, runtime, last activity, Terminate). */
import { showErrorMessage } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import React, { useEffect, useState } from 'react';

import { formatDuration } from '../api';
import { IRuntimeTerminal, TerminalsOverview } from '../models/terminalsOverview';
import { IJobRuntime, SlurmModel } from '../slurm/model';

const REFRESH_MS = 5000;

function secondsSince(iso: string | null | undefined): number | null {
  return iso ? (Date.now() - Date.parse(iso)) / 1000 : null;
}

/** Polls `load` every few seconds while mounted; null until the first answer. */
function usePolled<T>(load: () => Promise<T[]>): [T[] | null, () => void] {
  const [items, setItems] = useState<T[] | null>(null);
  const refresh = () => void load().then(setItems, () => setItems(old => old ?? [])); // absent part: empty
  useEffect(() => {
    refresh();
    const timer = setInterval(refresh, REFRESH_MS);
    return () => clearInterval(timer);
  }, []);
  return [items, refresh];
}

function JobsTable(props: { model: SlurmModel; trans: TranslationBundle }): JSX.Element | null {
  const { model, trans } = props;
  const [jobs, refresh] = usePolled<IJobRuntime>(() => model.jobs());
  if (!jobs || !jobs.length) {
    return null;
  }
  return (
    <>
      <h3 className="jp-AccelSessions-heading">{trans.__('Cluster jobs')}</h3>
      <table className="jp-AccelTable jp-AccelSessions-jobs">
        <thead>
          <tr>
            <th>{trans.__('Job')}</th>
            <th>{trans.__('Runtime')}</th>
            <th>{trans.__('State')}</th>
            <th>{trans.__('Node')}</th>
            <th>{trans.__('Time left')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {jobs.map(j => {
            const d = j.provider.details ?? ({} as IJobRuntime['provider']['details']);
            return (
              <tr key={j.name} data-job={j.name}>
                <td title={j.name}>{d.job_id ?? '–'}</td>
                <td>{d.cluster_runtime}</td>
                <td title={d.job_state ?? ''}>{j.provider.message}</td>
                <td>{d.node ?? '–'}</td>
                <td>{d.time_left !== null ? formatDuration(d.time_left) : '–'}</td>
                <td>
                  {j.provider.state !== 'stopped' && (
                    <button
                      className="jp-mod-styled jp-mod-warn jp-AccelSessions-cancelJob"
                      onClick={() =>
                        model
                          .cancel(j.name)
                          .then(refresh, e => showErrorMessage(trans.__('Cancel failed'), e))
                      }
                    >
                      {trans.__('Cancel job')}
                    </button>
                  )}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </>
  );
}

function TerminalsTable(props: {
  model: TerminalsOverview;
  trans: TranslationBundle;
}): JSX.Element | null {
  const { model, trans } = props;
  const [terminals, refresh] = usePolled<IRuntimeTerminal>(() => model.list());
  if (!terminals || !terminals.length) {
    return null;
  }
  return (
    <>
      <h3 className="jp-AccelSessions-heading">{trans.__('Terminals')}</h3>
      <table className="jp-AccelTable jp-AccelSessions-terminals">
        <thead>
          <tr>
            <th>{trans.__('Terminal')}</th>
            <th>{trans.__('Runtime')}</th>
            <th>{trans.__('Idle')}</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {terminals.map(t => (
            <tr key={`${t.runtime}/${t.name}`} data-runtime={t.runtime} data-terminal={t.name}>
              <td>{t.name}</td>
              <td title={t.runtime}>{t.runtime_display_name}</td>
              <td>{formatDuration(secondsSince(t.last_activity))}</td>
              <td>
                <button
                  className="jp-mod-styled jp-mod-warn jp-AccelSessions-terminateTerminal"
                  onClick={() =>
                    model
                      .terminate(t.runtime, t.name)
                      .then(refresh, e => showErrorMessage(trans.__('Terminate failed'), e))
                  }
                >
                  {trans.__('Terminate')}
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}

/** The parts of Manage sessions that are not kernels; each shows only when it has rows. */
export function SessionsExtras(props: {
  jobs: SlurmModel;
  terminals: TerminalsOverview;
  trans: TranslationBundle;
}): JSX.Element {
  return (
    <div className="jp-AccelSessions-extras">
      <JobsTable model={props.jobs} trans={props.trans} />
      <TerminalsTable model={props.terminals} trans={props.trans} />
    </div>
  );
}
