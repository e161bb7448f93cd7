/** The runtime's output journal of a kernel (`GET /accel/kernels/{id}/journal`), and turning
 * its messages into notebook outputs. No widgets here. */
import type * as nbformat from '@jupyterlab/nbformat';
import { ServerConnection } from '@jupyterlab/services';

import { requestAPI } from '../api';

export interface IJournalMessage {
  seq: number;
  msg_type: string;
  header: { msg_id: string; msg_type: string };
  parent_header: { msg_id?: string };
  metadata: Record<string, unknown>;
  content: any;
}

export interface IJournalExecution {
  msg_id: string;
  code: string;
  execution_count: number | null;
  status: 'busy' | 'idle' | string;
  dropped_messages: number;
  dropped_bytes: number;
}

export interface IJournal {
  kernel_id: string;
  last_seq: number;
  executions: IJournalExecution[];
  messages: IJournalMessage[];
}

export function fetchJournal(
  kernelId: string,
  settings: ServerConnection.ISettings,
  since = 0
): Promise<IJournal> {
  const path = `accel/kernels/${encodeURIComponent(kernelId)}/journal?since=${since}`;
  return requestAPI<IJournal>(path, {}, settings);
}

/** What one iopub message does to a cell's outputs. */
export type OutputAction =
  | { kind: 'add'; output: nbformat.IOutput }
  | { kind: 'clear' }
  | { kind: 'count'; value: number | null }
  | { kind: 'status'; value: string }
  | { kind: 'none' };

export function outputAction(msg: { header: { msg_type: string }; content: any }): OutputAction {
  const c = msg.content ?? {};
  switch (msg.header.msg_type) {
    case 'stream':
      return { kind: 'add', output: { output_type: 'stream', name: c.name, text: c.text } };
    case 'display_data':
      return {
        kind: 'add',
        output: { output_type: 'display_data', data: c.data, metadata: c.metadata ?? {} }
      };
    case 'execute_result':
      return {
        kind: 'add',
        output: {
          output_type: 'execute_result',
          data: c.data,
          metadata: c.metadata ?? {},
          execution_count: c.execution_count ?? null
        }
      };
    case 'error':
      return {
        kind: 'add',
        output: {
          output_type: 'error',
          ename: c.ename,
          evalue: c.evalue,
          traceback: c.traceback ?? []
        }
      };
    case 'clear_output':
      return { kind: 'clear' };
    case 'execute_input':
      return { kind: 'count', value: c.execution_count ?? null };
    case 'status':
      return { kind: 'status', value: c.execution_state };
    default:
      return { kind: 'none' };
  }
}

/** The outputs an execution's journal messages make, in order (stream runs merged). */
export function outputsOf(messages: IJournalMessage[]): nbformat.IOutput[] {
  let outputs: nbformat.IOutput[] = [];
  for (const m of messages) {
    const a = outputAction(m);
    if (a.kind === 'clear') {
      outputs = [];
    } else if (a.kind === 'add') {
      const last = outputs[outputs.length - 1] as nbformat.IStream | undefined;
      const out = a.output as nbformat.IStream;
      if (
        last &&
        last.output_type === 'stream' &&
        out.output_type === 'stream' &&
        last.name === out.name
      ) {
        outputs[outputs.length - 1] = { ...last, text: String(last.text) + String(out.text) };
      } else {
        outputs.push(a.output);
      }
    }
  }
  return outputs;
}
