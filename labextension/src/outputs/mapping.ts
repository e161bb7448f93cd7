/**
 * Which cell each journal execution belongs to, without writing anything into the notebook.
 *
 * When a cell runs, the execute_request's msg_id and the cell's id (JupyterLab sends it as
 * `metadata.cellId`) are remembered in the browser, keyed by kernel (`ExecutionCells`). A page
 * reopened later maps the journal's executions to cells by that record, else by the same
 * source text (the latest execution of a source goes to the last unclaimed cell with it).
 * Pure logic: no widgets, no requests.
 */

/** One journal execution as the mapping needs it. */
export interface IExecutionRef {
  msg_id: string;
  code: string;
}

/** One code cell as the mapping needs it. */
export interface ICellRef {
  id: string;
  source: string;
}

/** execution msg_id -> cell id, for the executions a cell was found for. */
export function mapExecutions(
  executions: IExecutionRef[],
  cells: ICellRef[],
  known: ReadonlyMap<string, string>
): Map<string, string> {
  const result = new Map<string, string>();
  const ids = new Set(cells.map(c => c.id));
  const claimed = new Set<string>();
  // Recorded ones first, so a source match never takes a cell its own execution has.
  for (const ex of executions) {
    const cellId = known.get(ex.msg_id);
    if (cellId && ids.has(cellId)) {
      result.set(ex.msg_id, cellId);
      claimed.add(cellId);
    }
  }
  // Newest execution first: it is the one whose output the cell shows.
  for (const ex of [...executions].reverse()) {
    if (result.has(ex.msg_id)) {
      continue;
    }
    const same = cells.filter(c => !claimed.has(c.id) && c.source === ex.code);
    const cell = same[same.length - 1];
    if (cell) {
      result.set(ex.msg_id, cell.id);
      claimed.add(cell.id);
    }
  }
  return result;
}

/** The minimal storage this needs (window.localStorage in the browser, a Map in tests). */
export interface IKeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

const STORAGE_KEY = 'jupyterlab-accel:execution-cells';

type Entries = [string, string][];

/** The executions sent from this browser, per kernel: msg_id -> cell id. Kept in one storage
 * key, bounded: `limit` executions per kernel, `kernels` kernels (least recently used go). */
export class ExecutionCells {
  constructor(
    private _store: IKeyValueStore | null,
    readonly limit = 200,
    readonly kernels = 20
  ) {}

  remember(kernelId: string, msgId: string, cellId: string): void {
    this._all = null; // another tab may have written since
    const all = this._load();
    const entries = (all.get(kernelId) ?? []).filter(([m]) => m !== msgId);
    entries.push([msgId, cellId]);
    all.delete(kernelId);
    all.set(kernelId, entries.slice(-this.limit)); // most recently used last
    while (all.size > this.kernels) {
      all.delete(all.keys().next().value as string);
    }
    try {
      this._store?.setItem(STORAGE_KEY, JSON.stringify([...all]));
    } catch {
      // quota or private mode: memory only; the source match still works after a reload
    }
  }

  /** msg_id -> cell id for one kernel. */
  get(kernelId: string): Map<string, string> {
    return new Map(this._load().get(kernelId) ?? []);
  }

  private _load(): Map<string, Entries> {
    if (this._all) {
      return this._all;
    }
    const all = new Map<string, Entries>();
    try {
      const raw = this._store?.getItem(STORAGE_KEY);
      const parsed: unknown = raw ? JSON.parse(raw) : [];
      for (const item of Array.isArray(parsed) ? parsed : []) {
        if (Array.isArray(item) && typeof item[0] === 'string' && Array.isArray(item[1])) {
          const entries = (item[1] as unknown[]).filter(
            (e): e is [string, string] =>
              Array.isArray(e) && typeof e[0] === 'string' && typeof e[1] === 'string'
          );
          all.set(item[0], entries);
        }
      }
    } catch {
      // unreadable: start again
    }
    this._all = all;
    return all;
  }

  private _all: Map<string, Entries> | null = null;
}

/** Whether two lists of outputs are the same JSON, whatever the key order (multiline strings
 * as nbformat lists or joined compare equal). */
export function sameOutputs(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(value: unknown): string {
  return JSON.stringify(normalize(value));
}

function normalize(value: unknown): unknown {
  if (Array.isArray(value)) {
    return value.map(normalize);
  }
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) {
      let v = (value as Record<string, unknown>)[key];
      if (key === 'text' && Array.isArray(v)) {
        v = v.join('');
      }
      if (v !== undefined) {
        out[key] = normalize(v);
      }
    }
    return out;
  }
  return value;
}
