// The JPEG decoder: jpeg-js (pinned 0.4.4) with one fix applied as it loads.
//
// jpeg-js decodes a restart interval of a non-interleaved (single-component) scan without stopping at the
// component's last block, so a progressive JPEG whose restart interval does not divide a component's block
// count (libjpeg's `-restart N` with chroma subsampling, for one) decodes past the scan and fails with
// "unexpected marker". The loop gets the bound the interleaved branch already has. If the source ever
// differs from the pinned version, the unpatched module is used.

import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import { runInThisContext } from 'node:vm';
import jpeg from 'jpeg-js';

export interface JpegDecodeOptions {
  useTArray: true;
  formatAsRGBA: true;
  maxResolutionInMP: number;
  maxMemoryUsageInMB: number;
}
type Decode = (buf: Uint8Array, opts: JpegDecodeOptions) => { width: number; height: number; data: Uint8Array };

const BUGGY = 'for (n = 0; n < resetInterval; n++) {\n          decodeBlock(component, decodeFn, mcu);';
const FIXED = 'for (n = 0; n < resetInterval && mcu < mcuExpected; n++) {\n          decodeBlock(component, decodeFn, mcu);';

function load(): Decode {
  try {
    const require = createRequire(import.meta.url);
    const file = require.resolve('jpeg-js/lib/decoder.js');
    const src = readFileSync(file, 'utf8');
    if (!src.includes(BUGGY)) return jpeg.decode as unknown as Decode;
    const mod = { exports: {} as unknown };
    const fn = runInThisContext(`(function (module, exports, require) {${src.replace(BUGGY, FIXED)}\n})`, { filename: file }) as (m: unknown, e: unknown, r: NodeRequire) => void;
    fn(mod, mod.exports, require);
    return mod.exports as Decode;
  } catch {
    return jpeg.decode as unknown as Decode;
  }
}

export const decodeJpegPixels: Decode = load();
