import { isJobOf } from '../src/slurm/model';

describe('isJobOf', () => {
  it("matches the kernel of a cluster runtime's job", () => {
    expect(isJobOf('accel--hpc-1a2b3c--python3', 'accel--hpc--python3')).toBe(true);
  });

  it('refuses other runtimes, specs and names', () => {
    expect(isJobOf('accel--hpc--python3', 'accel--hpc--python3')).toBe(false);
    expect(isJobOf('accel--hpc2-1a2b3c--python3', 'accel--hpc--python3')).toBe(false);
    expect(isJobOf('accel--hpc-1a2b3c--r', 'accel--hpc--python3')).toBe(false);
    expect(isJobOf('accel--hpc-xyz123--python3', 'accel--hpc--python3')).toBe(false);
    expect(isJobOf('python3', 'accel--hpc--python3')).toBe(false);
    expect(isJobOf(null, 'accel--hpc--python3')).toBe(false);
  });
});
