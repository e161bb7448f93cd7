import { listCandidates, matching, resolveChoice, unavailableReason } from '../src/models/choice';

const trans = {
  __: (text: string, ...args: unknown[]) =>
    args.reduce<string>((s, a, i) => s.replace(`%${i + 1}`, String(a)), text)
} as any;

function spec(name: string, accel?: object) {
  return {
    name,
    display_name: name,
    language: 'python',
    argv: [],
    resources: {},
    metadata: accel ? { accel } : {}
  } as any;
}

function runtime(name: string, accelerator: string, healthy = true, devices = 0) {
  return {
    name,
    display_name: name.toUpperCase(),
    url: '',
    healthy,
    error: healthy ? null : 'timed out',
    info: {
      accelerator,
      shape: 'standard',
      devices: Array.from({ length: devices }, (_, i) => ({
        index: i,
        kind: 'gpu',
        name: 'A100',
        memory_total: 16
      }))
    }
  } as any;
}

const specs = {
  default: 'accel--local--python3',
  kernelspecs: {
    python3: spec('python3'),
    'accel--local--python3': spec('accel--local--python3', { accelerator: 'none' }),
    'accel--gpu--python3': spec('accel--gpu--python3', { accelerator: 'gpu' }),
    'accel--gpu--julia': spec('accel--gpu--julia', { accelerator: 'gpu' })
  }
};

describe('runtime choice', () => {
  const runtimes = [runtime('local', 'none'), runtime('gpu', 'gpu', true, 1)];
  const metrics = {
    gpu: { time: 0, devices: [{ index: 0, name: 'A100', memory_used: 4, memory_total: 16 }] }
  };

  it('offers one spec per healthy runtime, the current kernel first', () => {
    const c = listCandidates(specs as any, runtimes, metrics, 'accel--local--python3', trans);
    expect(c.map(x => x.spec)).toEqual(['accel--local--python3', 'accel--gpu--python3']);
    const gpu = c[1];
    expect(gpu.runtimeLabel).toBe('GPU');
    expect(gpu.freeMemory).toBe(12);
    expect(gpu.deviceName).toBe('A100');
  });

  it('adds the local kernel only when no runtime offers CPU', () => {
    const c = listCandidates(specs as any, [runtimes[1]], {}, 'python3', trans);
    expect(c.map(x => x.spec)).toEqual(['accel--gpu--python3', 'python3']);
    expect(c[1].runtime).toBeNull();
  });

  it('says why a combination is unavailable', () => {
    const down = [runtime('local', 'none'), runtime('tpu', 'tpu', false)];
    const c = listCandidates(specs as any, down, {}, null, trans);
    expect(unavailableReason(c, down, 'gpu', 'standard', trans)).toBe(
      'No connected runtime has a GPU'
    );
    expect(unavailableReason(c, down, 'tpu', 'standard', trans)).toBe(
      'The TPU runtime "TPU" is unreachable: timed out'
    );
    expect(unavailableReason(c, down, 'none', 'highmem', trans)).toBe(
      'No CPU runtime offers High-RAM'
    );
    expect(unavailableReason(c, down, 'none', 'standard', trans)).toBeNull();
  });

  it('resolves a saved choice to its spec, else its runtime, else any match', () => {
    const c = listCandidates(specs as any, runtimes, metrics, null, trans);
    expect(matching(c, 'gpu', 'standard')).toHaveLength(1);
    expect(
      resolveChoice(c, { accelerator: 'gpu', shape: 'standard', kernel_spec: 'accel--gone--x' })
        ?.spec
    ).toBe('accel--gpu--python3');
    expect(resolveChoice(c, { accelerator: 'tpu', shape: 'standard' })).toBeNull();
  });
});
