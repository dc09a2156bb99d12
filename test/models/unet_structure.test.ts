// Structure of the official models: a shape-only (meta) build of every official config's UNet and
// conditioning encoder must give exactly the reference state-dict keys, in order, with the same shapes
// (reference key lists: shared/reference/keys/*.tsv), and the published parameter counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { Module } from '../../src/nn/index.js';
import { unetFromParams, UNetModel } from '../../src/models/unet/index.js';
import { BERTEmbedder, ClassEmbedder, SpatialRescaler, encoderFromParams } from '../../src/models/encoders/index.js';
import { instantiate } from '../../src/loader/targets.js';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const ref = resolve(repoRoot, '../shared/reference');
const skip = existsSync(ref) ? false : `reference material not found at ${ref} (shared/reference is absent)`;

type Node = { target: string; params?: Record<string, unknown> };

/** Official LDM configs with a UNet, and the key list each corresponds to. */
function configs(): { name: string; file: string; tsv: string }[] {
  const out: { name: string; file: string; tsv: string }[] = [];
  const models = join(ref, 'configs/models/ldm');
  for (const d of readdirSync(models)) out.push({ name: d, file: join(models, d, 'config.yaml'), tsv: join(ref, 'keys', `ldm_${d}.tsv`) });
  const ld = join(ref, 'configs/configs/latent-diffusion');
  for (const f of readdirSync(ld)) out.push({ name: f, file: join(ld, f), tsv: join(ref, 'keys', `cfg_${basename(f, '.yaml')}.tsv`) });
  out.push({ name: 'rdm 768x768', file: join(ref, 'configs/configs/retrieval-augmented-diffusion/768x768.yaml'), tsv: join(ref, 'keys/rdm_768.tsv') });
  return out;
}

function refKeys(tsv: string, prefix: string): [string, number[]][] {
  const rows: [string, number[]][] = [];
  for (const line of readFileSync(tsv, 'utf8').split('\n')) {
    const [k, s] = line.split('\t');
    if (!k || !k.startsWith(prefix)) continue;
    const shape = s.replace(/[() ]/g, '').split(',').filter((x) => x !== '').map(Number);
    rows.push([k.slice(prefix.length), shape]);
  }
  return rows;
}

function ourKeys(m: Module): [string, number[]][] {
  return [...m.stateDict()].map(([k, t]) => [k, [...t.shape]]);
}

function assertSameKeys(ours: [string, number[]][], theirs: [string, number[]][], what: string): void {
  const o = new Map(ours), r = new Map(theirs);
  const missing = theirs.filter(([k]) => !o.has(k)).map(([k]) => k);
  const extra = ours.filter(([k]) => !r.has(k)).map(([k]) => k);
  assert.deepEqual({ missing: missing.slice(0, 10), extra: extra.slice(0, 10) }, { missing: [], extra: [] }, `${what}: key sets differ`);
  for (const [k, s] of theirs) assert.deepEqual(o.get(k), s, `${what}: shape of ${k}`);
  assert.deepEqual(ours.map(([k]) => k), theirs.map(([k]) => k), `${what}: key order differs from the reference state_dict`);
}

const count = (keys: [string, number[]][]) => keys.reduce((n, [, s]) => n + s.reduce((a, b) => a * b, 1), 0);

// Published UNet sizes (from the reference configs and the paper), in millions.
const PUBLISHED: Record<string, number> = {
  celeba256: 274.1, ffhq256: 274.1, lsun_beds256: 274.1, lsun_churches256: 295.0, cin256: 395.0, 'cin256-v2.yaml': 400.9,
  text2img256: 403.6, 'txt2img-1p4B-eval.yaml': 872.3, 'layout2img-openimages256': 246.3, semantic_synthesis256: 215.2,
  semantic_synthesis512: 215.2, bsr_sr: 113.6, inpainting_big: 387.2, 'rdm 768x768': 1335.5,
};

test('official configs: meta-built UNets have the reference keys, shapes and parameter counts', { skip }, () => {
  let checked = 0;
  for (const c of configs()) {
    const doc = parse(readFileSync(c.file, 'utf8')) as { model: { params: Record<string, unknown> } };
    const unetNode = doc.model.params.unet_config as Node | undefined;
    if (!unetNode) continue;
    assert.equal(unetNode.target, 'ldm.modules.diffusionmodules.openaimodel.UNetModel', c.name);
    const t0 = Date.now();
    const unet = instantiate<UNetModel>(unetNode, 'model.params.unet_config', { meta: true });
    assert.ok(unet instanceof UNetModel);
    const ms = Date.now() - t0;
    assert.ok(ms < 2000, `${c.name}: meta build took ${ms} ms`);
    const theirs = refKeys(c.tsv, 'model.diffusion_model.');
    assertSameKeys(ourKeys(unet), theirs, `${c.name} UNet`);
    assert.equal(unet.numParameters(), count(theirs), `${c.name}: parameter count`);
    if (PUBLISHED[c.name] !== undefined) {
      assert.equal(Math.round(unet.numParameters() / 1e5) / 10, PUBLISHED[c.name], `${c.name}: published UNet size`);
    }
    checked++;
  }
  assert.ok(checked >= 18, `only ${checked} configs checked`);
});

test('official configs: meta-built conditioning encoders have the reference keys and shapes', { skip }, () => {
  const seen = new Set<string>();
  for (const c of configs()) {
    const doc = parse(readFileSync(c.file, 'utf8')) as { model: { params: Record<string, unknown> } };
    const node = doc.model.params.cond_stage_config as Node | string | undefined;
    if (!node || typeof node === 'string') continue;
    const p = node.params ?? {};
    if (!['ClassEmbedder', 'BERTEmbedder', 'SpatialRescaler'].some((n) => node.target.endsWith(`.${n}`))) continue;
    // through the targets table, as a config load does
    const m = instantiate<Module>({ target: node.target, params: p }, 'model.params.cond_stage_config', { meta: true });
    assert.ok(m instanceof { ClassEmbedder, BERTEmbedder, SpatialRescaler }[node.target.split('.').pop() as 'ClassEmbedder']);
    seen.add(node.target.split('.').pop()!);
    const theirs = refKeys(c.tsv, 'cond_stage_model.');
    assertSameKeys(ourKeys(m), theirs, `${c.name} ${node.target}`);
  }
  assert.deepEqual([...seen].sort(), ['BERTEmbedder', 'ClassEmbedder', 'SpatialRescaler']);
});

test('txt2img-1p4B: UNet 872.3 M and BERT 582.0 M parameters; head counts per the HEAD code', { skip }, () => {
  const doc = parse(readFileSync(join(ref, 'configs/configs/latent-diffusion/txt2img-1p4B-eval.yaml'), 'utf8')) as {
    model: { params: { unet_config: Node; cond_stage_config: Node } };
  };
  const unet = unetFromParams(doc.model.params.unet_config.params!, { meta: true });
  assert.equal((unet.numParameters() / 1e6).toFixed(1), '872.3');
  const bert = encoderFromParams('BERTEmbedder', doc.model.params.cond_stage_config.params!, { meta: true });
  assert.equal((bert.numParameters() / 1e6).toFixed(1), '582.0');
  // 8 heads × C/8 (legacy: False)
  assert.deepEqual(unet.attentionLayers.slice(0, 3).map((a) => [a.channels, a.heads, a.dimHead]), [[320, 8, 40], [320, 8, 40], [640, 8, 80]]);
  assert.throws(() => unet.forward(null as never, null as never), /meta/);
});

test('head-count rules match the reference structure listing (unet_structure_HEAD.txt)', { skip }, () => {
  // Parse "### name: ..." sections and their "Attn(c=..,heads=..,d=..)" / "ST(c=..,heads=..,d=..)" entries.
  const text = readFileSync(join(ref, 'keys/unet_structure_HEAD.txt'), 'utf8');
  const sections = new Map<string, [string, number, number, number][]>();
  let cur: [string, number, number, number][] | null = null;
  for (const line of text.split('\n')) {
    const h = /^### (\S+):/.exec(line);
    if (h) sections.set(h[1], (cur = []));
    else if (cur) for (const m of line.matchAll(/(Attn|ST)\(c=(\d+),heads=(\d+),d=(\d+)/g)) cur.push([m[1] === 'ST' ? 'SpatialTransformer' : 'AttentionBlock', +m[2], +m[3], +m[4]]);
  }
  const files: Record<string, string> = {};
  for (const c of configs()) files[c.name.replace(/\.yaml$/, '')] = c.file;
  Object.assign(files, {
    rdm768: files['rdm 768x768'], 'txt2img-1p4B': files['txt2img-1p4B-eval'], layout2img: files['layout2img-openimages256'],
    semantic256: files['semantic_synthesis256'],
  });
  let n = 0;
  for (const [name, expected] of sections) {
    const file = files[name];
    if (!file) continue;
    const doc = parse(readFileSync(file, 'utf8')) as { model: { params: { unet_config: Node } } };
    const unet: UNetModel = unetFromParams(doc.model.params.unet_config.params!, { meta: true });
    assert.deepEqual(unet.attentionLayers.map((a) => [a.kind, a.channels, a.heads, a.dimHead]), expected, `${name}: attention layers`);
    n++;
  }
  assert.ok(n >= 11, `only ${n} structure listings compared`);
});

test('legacyTransformerHeads: "single" gives 1 head × C in legacy ST configs with the same keys; no effect otherwise', { skip }, () => {
  const load = (f: string) => (parse(readFileSync(join(ref, f), 'utf8')) as { model: { params: { unet_config: Node } } }).model.params.unet_config;
  const cin = load('configs/models/ldm/cin256/config.yaml');
  const head = instantiate<UNetModel>(cin, '', { meta: true });
  const single = instantiate<UNetModel>(cin, '', { meta: true, legacyTransformerHeads: 'single' });
  assert.deepEqual(head.attentionLayers.slice(0, 3).map((a) => [a.heads, a.dimHead]), [[8, 32], [8, 32], [16, 32]]);
  assert.deepEqual(single.attentionLayers.slice(0, 3).map((a) => [a.heads, a.dimHead]), [[1, 256], [1, 256], [1, 512]]);
  assert.deepEqual(ourKeys(single), ourKeys(head));
  const t2i = load('configs/configs/latent-diffusion/txt2img-1p4B-eval.yaml'); // legacy: False
  const a = instantiate<UNetModel>(t2i, '', { meta: true, legacyTransformerHeads: 'single' });
  assert.deepEqual(a.attentionLayers[0], { kind: 'SpatialTransformer', channels: 320, heads: 8, dimHead: 40 });
});
