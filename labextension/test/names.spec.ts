import { isRemoteSpec, parseSpecName, specName } from '../src/names';

describe('the kernel spec name scheme', () => {
  it('round-trips a runtime and a spec', () => {
    const name = specName('gpu-box', 'python3');
    expect(name).toBe('accel--gpu-box--python3');
    expect(parseSpecName(name)).toEqual({ runtime: 'gpu-box', spec: 'python3' });
  });

  it('keeps "--" inside the spec part', () => {
    expect(parseSpecName('accel--local--my--kernel')).toEqual({
      runtime: 'local',
      spec: 'my--kernel'
    });
  });

  it.each([
    'python3',
    '',
    null,
    undefined,
    'accel--',
    'accel--local',
    'accel----x',
    'accel--local--'
  ])('reads %p as a local kernel', name => {
    expect(parseSpecName(name)).toBeNull();
    expect(isRemoteSpec(name)).toBe(false);
  });
});
