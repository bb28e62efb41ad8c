import { describe, expect, it } from 'vitest';
import { encodeFrame, FrameDecoder, FrameError } from '../../lib/wire/index.js';

function collect(decoder: FrameDecoder, chunks: Uint8Array[]): string[] {
  const out: string[] = [];
  for (const c of chunks) decoder.push(c, (p) => out.push(Buffer.from(p).toString()));
  return out;
}

describe('FrameDecoder', () => {
  const frames = ['a', '', 'hello world', 'x'.repeat(300)].map((s) => encodeFrame(Buffer.from(s)));
  const all = Buffer.concat(frames);

  it('decodes coalesced frames from one chunk', () => {
    expect(collect(new FrameDecoder(), [all])).toEqual(['a', '', 'hello world', 'x'.repeat(300)]);
  });

  it('decodes frames split at every byte boundary', () => {
    for (let cut = 1; cut < all.length; cut++) {
      const got = collect(new FrameDecoder(), [all.subarray(0, cut), all.subarray(cut)]);
      expect(got, `cut at ${cut}`).toEqual(['a', '', 'hello world', 'x'.repeat(300)]);
    }
  });

  it('decodes frames fed one byte at a time', () => {
    const bytes = [...all].map((b) => Uint8Array.of(b));
    expect(collect(new FrameDecoder(), bytes)).toEqual(['a', '', 'hello world', 'x'.repeat(300)]);
  });

  it('rejects an oversize length before buffering it', () => {
    const d = new FrameDecoder(1024);
    const header = Buffer.alloc(4);
    header.writeUInt32BE(1025);
    expect(() => d.push(header, () => {})).toThrow(FrameError);
    expect(() =>
      new FrameDecoder(1024).push(Buffer.from([0xff, 0xff, 0xff, 0xff]), () => {}),
    ).toThrow(/exceeds the limit of 1024 bytes/);
  });

  it('reports a stream that ends mid-frame', () => {
    const d = new FrameDecoder();
    d.push(all.subarray(0, 8), () => {});
    expect(() => d.end()).toThrow(/stream ended inside a frame/);
    const clean = new FrameDecoder();
    clean.push(all, () => {});
    expect(() => clean.end()).not.toThrow();
  });

  it('refuses to encode a payload over the limit', () => {
    expect(() => encodeFrame(new Uint8Array(11), 10)).toThrow(FrameError);
  });
});
