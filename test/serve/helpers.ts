// What the serve tests share: tiny random-weight models on disk (a class-conditional one shaped like a
// cin config with 10 classes + the "no class" label, and a concat-conditioned inpainting one), a free
// port, a server started in-process, SSE reading, and child processes of the `ldm` command.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import * as T from '../../src/engine/index.js';
import type { ConfigNode } from '../../src/io/config.js';
import { writeSafetensors } from '../../src/io/safetensors.js';
import { instantiate } from '../../src/loader/targets.js';
import type { LatentDiffusion } from '../../src/diffusion/latent-diffusion.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

const kl = { target: 'ldm.models.autoencoder.AutoencoderKL', params: { embed_dim: 4, lossconfig: { target: 'torch.nn.Identity' }, ddconfig: { double_z: true, z_channels: 4, resolution: 16, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0 } } };
const base = { linear_start: 0.0015, linear_end: 0.0195, num_timesteps_cond: 1, log_every_t: 200, timesteps: 1000, first_stage_key: 'image', image_size: 8, monitor: 'val/loss', use_ema: false };

/** A cin-like class-conditional model: 16×16 images (KL f = 2), labels 0…9 and 10 = "no class". */
export const CLASS_CONFIG: ConfigNode = {
  target: 'ldm.models.diffusion.ddpm.LatentDiffusion',
  params: {
    ...base, cond_stage_key: 'class_label', channels: 4, cond_stage_trainable: true, conditioning_key: 'crossattn', scale_factor: 0.5,
    unet_config: { target: 'ldm.modules.diffusionmodules.openaimodel.UNetModel', params: { image_size: 8, in_channels: 4, out_channels: 4, model_channels: 32, attention_resolutions: [2], num_res_blocks: 1, channel_mult: [1, 2], num_heads: 2, use_spatial_transformer: true, transformer_depth: 1, context_dim: 16, legacy: false } },
    first_stage_config: kl,
    cond_stage_config: { target: 'ldm.modules.encoders.modules.ClassEmbedder', params: { embed_dim: 16, n_classes: 11, key: 'class_label' } },
  },
};

/** models/ldm/inpainting_big's structure: VQ first stage (f = 2), UNet input [x_t, VQ(masked image), mask]. */
export const INPAINT_CONFIG: ConfigNode = {
  target: 'ldm.models.diffusion.ddpm.LatentDiffusion',
  params: {
    ...base, linear_end: 0.0205, loss_type: 'l1', cond_stage_key: 'masked_image', channels: 3, concat_mode: true,
    unet_config: { target: 'ldm.modules.diffusionmodules.openaimodel.UNetModel', params: { image_size: 8, in_channels: 7, out_channels: 3, model_channels: 32, attention_resolutions: [2], num_res_blocks: 1, channel_mult: [1, 2], num_head_channels: 8 } },
    first_stage_config: { target: 'ldm.models.autoencoder.VQModelInterface', params: { embed_dim: 3, n_embed: 32, lossconfig: { target: 'torch.nn.Identity' }, ddconfig: { double_z: false, z_channels: 3, resolution: 16, in_channels: 3, out_ch: 3, ch: 32, ch_mult: [1, 2], num_res_blocks: 1, attn_resolutions: [], dropout: 0.0, attn_type: 'none' } } },
    cond_stage_config: '__is_first_stage__',
  },
};

export const DIGITS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];

/** config.yaml + model.safetensors (seeded random weights; zero-initialised layers randomised too) in a fresh folder. */
export function tinyModelDir(kind: 'class' | 'inpaint', parent = mkdtempSync(path.join(tmpdir(), 'ldm-serve-')), seed = 1): string {
  const dir = path.join(parent, kind === 'class' ? 'tiny-class' : 'tiny-inpaint');
  mkdirSync(dir, { recursive: true });
  const cfg = kind === 'class' ? CLASS_CONFIG : INPAINT_CONFIG;
  writeFileSync(path.join(dir, 'config.yaml'), stringify({ model: cfg }));
  const gen = new T.Generator(seed);
  const m = instantiate<LatentDiffusion>(cfg, 'model', { gen });
  for (const [, p] of m.namedParameters()) {
    const d = p.data as Float32Array;
    if (d.every((v) => v === 0)) for (let i = 0; i < d.length; i++) d[i] = 0.05 * gen.normal();
  }
  writeSafetensors(path.join(dir, 'model.safetensors'), m.stateDict());
  if (kind === 'class') writeFileSync(path.join(dir, 'classes.txt'), DIGITS.join('\n') + '\n');
  return dir;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

export interface SseEvent {
  type: string;
  data: Record<string, unknown>;
  at: number;
}

/** Read a server-sent event stream until `until` returns true (or the stream ends). */
export async function readEvents(url: string, until: (e: SseEvent) => boolean, headers: Record<string, string> = {}, timeoutMs = 60_000): Promise<SseEvent[]> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const out: SseEvent[] = [];
  try {
    const res = await fetch(url, { headers, signal: ac.signal });
    if (!res.ok || !res.body) throw new Error(`${url}: HTTP ${res.status}`);
    const dec = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body) {
      buf += dec.decode(chunk as Uint8Array, { stream: true });
      let k;
      while ((k = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, k);
        buf = buf.slice(k + 2);
        const type = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!type || data === undefined) continue;
        const e = { type, data: JSON.parse(data), at: Date.now() };
        out.push(e);
        if (until(e)) {
          ac.abort();
          return out;
        }
      }
    }
    return out;
  } catch (e) {
    if ((e as Error).name === 'AbortError') return out;
    throw e;
  } finally {
    clearTimeout(timer);
  }
}

/** `ldm <args>` as a child process; resolves when a stdout/stderr line matches `ready`. */
export function startLdm(args: string[], ready: RegExp, env: Record<string, string> = {}): Promise<{ child: ChildProcess; lines: string[]; match: RegExpExecArray }> {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/ldm.mjs'), ...args], { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  return new Promise((resolve, reject) => {
    let done = false;
    const onData = (b: Buffer) => {
      for (const line of b.toString().split('\n')) {
        if (!line) continue;
        lines.push(line);
        const m = ready.exec(line);
        if (m && !done) {
          done = true;
          resolve({ child, lines, match: m });
        }
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      if (!done) reject(new Error(`ldm ${args[0]} exited with ${code} before it was ready:\n${lines.join('\n')}`));
    });
  });
}

/** A 8-bit RGB PNG/mask as a base64 string. */
export { encodePng } from '../../src/io/image.js';
