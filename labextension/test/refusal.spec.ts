import { describeRefusal, REASONS, reasonText, refusalOf } from '../src/models/refusal';

/** A translation bundle that marks what it translated. */
const trans = {
  __: (text: string, ...args: unknown[]) =>
    `T(${args.reduce<string>((s, a, i) => s.replace(`%${i + 1}`, String(a)), text)})`
} as any;

describe('refusal reasons as data', () => {
  it('reads reason and message from an API error body', () => {
    const err = Object.assign(new Error('No free device: 1 requested, 0 of 1 free.'), {
      status: 503,
      reason: 'no_free_device'
    });
    expect(refusalOf(err)).toEqual({
      reason: 'no_free_device',
      message: 'No free device: 1 requested, 0 of 1 free.',
      status: 503
    });
  });

  it('reads the reason phrase of a services ResponseError', () => {
    const err = Object.assign(new Error('This runtime allows 2 kernel(s) at once'), {
      response: { status: 503, statusText: 'max_kernels' }
    });
    expect(refusalOf(err)).toEqual({
      reason: 'max_kernels',
      message: 'This runtime allows 2 kernel(s) at once',
      status: 503
    });
  });

  it('ignores a reason phrase that is no documented reason', () => {
    const err = Object.assign(new Error('boom'), {
      response: { status: 500, statusText: 'Internal Server Error' }
    });
    expect(refusalOf(err).reason).toBeNull();
    expect(describeRefusal(err, trans)).toBe('boom');
  });

  it('gives each documented reason its own translated sentence', () => {
    const texts = REASONS.map(r => reasonText(r, trans));
    texts.forEach(t => expect(t).toMatch(/^T\(.+\)$/));
    expect(new Set(texts).size).toBe(REASONS.length);
  });

  it('falls back to the message for an unknown reason, never parsing it', () => {
    const err = Object.assign(new Error('HTTP 418: teapot (no_free_device)'), { reason: 'teapot' });
    expect(reasonText('teapot', trans)).toBeNull();
    expect(describeRefusal(err, trans)).toBe('HTTP 418: teapot (no_free_device)');
  });

  it('shows the reason sentence, not the message, when the reason is known', () => {
    const err = Object.assign(new Error('raw words'), { reason: 'no_free_device' });
    expect(describeRefusal(err, trans)).toBe(reasonText('no_free_device', trans));
  });

  it('copes with non-errors', () => {
    expect(refusalOf('plain')).toEqual({ reason: null, message: 'plain', status: null });
    expect(refusalOf(null)).toEqual({ reason: null, message: '', status: null });
  });
});
