import { ExecutionCells, mapExecutions, sameOutputs } from '../src/outputs/mapping';

class MemoryStore {
  data = new Map<string, string>();
  getItem(k: string) {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string) {
    this.data.set(k, v);
  }
  removeItem(k: string) {
    this.data.delete(k);
  }
}

describe('mapExecutions', () => {
  const cells = [
    { id: 'a', source: 'print(1)' },
    { id: 'b', source: 'print(1)' },
    { id: 'c', source: 'x = 2' }
  ];

  it('maps by the recorded cell id first', () => {
    const known = new Map([['m1', 'a']]);
    const got = mapExecutions([{ msg_id: 'm1', code: 'edited since' }], cells, known);
    expect(got.get('m1')).toBe('a');
  });

  it('falls back to the same source, the newest execution to the last such cell', () => {
    const got = mapExecutions(
      [
        { msg_id: 'old', code: 'print(1)' },
        { msg_id: 'new', code: 'print(1)' },
        { msg_id: 'x', code: 'x = 2' }
      ],
      cells,
      new Map()
    );
    expect(got.get('new')).toBe('b');
    expect(got.get('old')).toBe('a');
    expect(got.get('x')).toBe('c');
  });

  it('never gives a recorded cell to a source match', () => {
    const got = mapExecutions(
      [
        { msg_id: 'other', code: 'print(1)' },
        { msg_id: 'mine', code: 'print(1)' }
      ],
      [{ id: 'a', source: 'print(1)' }],
      new Map([['mine', 'a']])
    );
    expect(got.get('mine')).toBe('a');
    expect(got.has('other')).toBe(false);
  });

  it('ignores records of cells that are gone, and unknown code', () => {
    const got = mapExecutions(
      [
        { msg_id: 'm', code: 'deleted()' },
        { msg_id: 'n', code: 'nowhere()' }
      ],
      cells,
      new Map([['m', 'zz']])
    );
    expect(got.size).toBe(0);
  });
});

describe('ExecutionCells', () => {
  it('remembers across instances through the store (a reopened page)', () => {
    const store = new MemoryStore();
    new ExecutionCells(store).remember('k1', 'm1', 'a');
    expect(new ExecutionCells(store).get('k1').get('m1')).toBe('a');
  });

  it('keeps at most `limit` executions per kernel and `kernels` kernels', () => {
    const store = new MemoryStore();
    const cells = new ExecutionCells(store, 3, 2);
    for (let i = 0; i < 5; i++) {
      cells.remember('k1', `m${i}`, 'a');
    }
    expect([...cells.get('k1').keys()]).toEqual(['m2', 'm3', 'm4']);
    cells.remember('k2', 'x', 'b');
    cells.remember('k3', 'y', 'c');
    const fresh = new ExecutionCells(store, 3, 2);
    expect(fresh.get('k1').size).toBe(0);
    expect(fresh.get('k3').get('y')).toBe('c');
  });

  it('survives garbage in the store and a store that refuses writes', () => {
    const store = new MemoryStore();
    store.setItem('jupyterlab-accel:execution-cells', '{not json');
    const cells = new ExecutionCells(store);
    expect(cells.get('k').size).toBe(0);
    store.setItem = () => {
      throw new Error('quota');
    };
    expect(() => cells.remember('k', 'm', 'a')).not.toThrow();
  });
});

describe('sameOutputs', () => {
  it('ignores key order and multiline lists', () => {
    expect(
      sameOutputs(
        [{ output_type: 'stream', name: 'stdout', text: ['a\n', 'b\n'] }],
        [{ text: 'a\nb\n', name: 'stdout', output_type: 'stream' }]
      )
    ).toBe(true);
  });

  it('sees a different output', () => {
    expect(
      sameOutputs(
        [{ output_type: 'stream', name: 'stdout', text: 'a' }],
        [{ output_type: 'stream', name: 'stderr', text: 'a' }]
      )
    ).toBe(false);
    expect(sameOutputs([], [{ output_type: 'stream', name: 'stdout', text: '' }])).toBe(false);
  });
});
