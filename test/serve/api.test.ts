// The HTTP API of `ldm serve` on tiny random-weight models: what /api/models reports, a job's lifecycle
// with SSE progress and x̂₀ previews, PNG parameters, FIFO positions, cancelling queued and running jobs,
// every 4xx of the safety limits, the token, multipart uploads, img2img/inpainting pixel pasting, and the
// status endpoint's throughput while a job runs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main } from '../../src/cli/main.js';
import { decodeImage, encodePng, readPngText } from '../../src/io/image.js';
import { DIGITS, readEvents, tinyModelDir } from './helpers.js';
import { startServer, type Running } from './server.js';

const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-serve-api-'));
let classDir: string, inpaintDir: string, srv: Running;
const LIMITS = { maxSize: 64, maxSteps: 400, maxN: 3, maxQueue: 2, maxBodyBytes: 256 * 1024, maxUploadPixels: 64 * 64 };

before(async () => {
  classDir = tinyModelDir('class', tmp);
  inpaintDir = tinyModelDir('inpaint', tmp);
  srv = await startServer([{ source: classDir, classNames: path.join(classDir, 'classes.txt') }, { source: inpaintDir }], path.join(tmp, 'out'), { limits: LIMITS });
});
after(() => srv?.close());

async function post(body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${srv.url}/api/jobs`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}
const get = async (p: string) => {
  const res = await fetch(`${srv.url}${p}`);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};
const untilFinal = (e: { type: string }) => ['done', 'failed', 'cancelled'].includes(e.type);
/**
 * The status a waitDone stream ended on: its final event, or the replayed state when the job had already finished
 * before the stream connected (a 6-step 16×16 job can end between the POST and the events request).
 */
function finalStatus(evs: { type: string; data: Record<string, unknown> }[]): string {
  const e = evs.at(-1)!;
  return e.type === 'state' ? String(e.data.status) : e.type;
}

async function waitDone(id: string) {
  const evs = await readEvents(`${srv.url}/api/jobs/${id}/events`, (e) => untilFinal(e) || (e.type === 'state' && ['done', 'failed', 'cancelled'].includes(e.data.status as string)));
  return evs;
}

/** A PNG with a gradient, w×h. */
function picture(w: number, h: number) {
  const data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) [data[3 * i], data[3 * i + 1], data[3 * i + 2]] = [(i * 7) % 256, (i * 3) % 256, 200];
  return { width: w, height: h, channels: 3 as const, data };
}
/** White (fill) in the left half. */
function leftHalfMask(w: number, h: number) {
  const data = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w / 2; x++) data[y * w + x] = 255;
  return { width: w, height: h, channels: 1 as const, data };
}
const b64 = (img: Parameters<typeof encodePng>[0]) => `data:image/png;base64,${encodePng(img).toString('base64')}`;

test('GET /api/models: task, class names, sizes, samplers, limits', async () => {
  const { status, body } = await get('/api/models');
  assert.equal(status, 200);
  const models = body.models as Record<string, any>[];
  assert.deepEqual(models.map((m) => [m.name, m.task]), [['tiny-class', 'class'], ['tiny-inpaint', 'inpainting']]);
  const c = models[0];
  assert.deepEqual(c.classes, { count: 11, uncond: 10, names: [...DIGITS, 'no class'] });
  assert.deepEqual(c.size, { default: 16, multiple: 4 });
  assert.deepEqual(c.modes, ['generate', 'img2img', 'inpaint']);
  assert.ok(c.samplers.some((s: any) => s.name === 'ddim' && s.options.includes('eta')));
  assert.equal(c.text, false);
  assert.deepEqual(models[1].modes, ['inpaint']);
  assert.equal((body.limits as any).maxN, 3);
});

test('a job: 202 with its position, SSE progress step by step with x̂₀ previews, PNG with the parameters chunk', async () => {
  const t0 = Date.now();
  const r = await post({ class: 3, steps: 8, seed: 7, n: 2, scale: 2 });
  assert.equal(r.status, 202);
  assert.match(r.body.id as string, /^[0-9a-f-]{36}$/);
  assert.equal(r.body.position, 0); // nothing else queued: it runs at once
  const evs = await waitDone(r.body.id as string);
  const firstProgress = evs.find((e) => e.type === 'progress')!;
  console.log(`# submit → first progress event: ${firstProgress.at - t0} ms`);
  const steps = evs.filter((e) => e.type === 'progress').map((e) => e.data.step);
  assert.deepEqual(steps, [1, 2, 3, 4, 5, 6, 7, 8]);
  const previews = evs.filter((e) => e.type === 'progress' && e.data.preview);
  assert.ok(previews.length >= 4, `${previews.length} previews`);
  const pv = decodeImage(Buffer.from((previews[0].data.preview as string).split(',')[1], 'base64'));
  assert.deepEqual([pv.width, pv.height], [16, 16]);
  const done = evs.at(-1)!;
  assert.equal(done.type, 'done');
  assert.equal((done.data.images as string[]).length, 2);
  const job = (await get(`/api/jobs/${r.body.id}`)).body;
  assert.equal(job.status, 'done');
  assert.deepEqual(job.progress && (job.progress as any).step, 8);
  assert.ok((job.progress as any).its > 0);
  for (const [i, url] of (done.data.images as string[]).entries()) {
    const res = await fetch(srv.url + url);
    assert.equal(res.headers.get('content-type'), 'image/png');
    const png = Buffer.from(await res.arrayBuffer());
    const img = decodeImage(png);
    assert.deepEqual([img.width, img.height], [16, 16]);
    const p = JSON.parse(readPngText(png).parameters);
    assert.equal(p.class, '3');
    assert.equal(p.class_name, 'three');
    assert.equal(p.seed, 7);
    assert.equal(p.steps, 8);
    assert.equal(p.sampler, 'ddim');
    assert.equal(p.scale, 2);
    assert.equal(p.model, 'tiny-class');
    assert.equal(p.index, i);
  }
  // the same seed gives the same picture
  const again = await post({ class: 3, steps: 8, seed: 7, n: 1, scale: 2, preview: false });
  const evs2 = await waitDone(again.body.id as string);
  assert.ok(!evs2.some((e) => e.data.preview));
  const a = await (await fetch(`${srv.url}/api/jobs/${r.body.id}/images/0.png`)).arrayBuffer();
  const b = await (await fetch(`${srv.url}/api/jobs/${again.body.id}/images/0.png`)).arrayBuffer();
  assert.deepEqual(decodeImage(Buffer.from(a)).data, decodeImage(Buffer.from(b)).data);
});

test('FIFO positions, cancel a queued job and a running one, queue-full 429; status answers while a job runs', async () => {
  const long = await post({ class: 1, steps: 250, seed: 1, preview: false });
  const second = await post({ class: 2, steps: 4, seed: 2 });
  const third = await post({ class: 4, steps: 4, seed: 3 });
  assert.deepEqual([long.body.position, second.body.position, third.body.position], [0, 1, 2]);
  const full = await post({ class: 5, steps: 4 });
  assert.equal(full.status, 429);
  assert.equal(full.body.error, 'over_limit');
  assert.match(full.body.message as string, /queue of model tiny-class holds 2 jobs.*limit of 2 \(--max-queue\)/);

  // the event loop is free while the generation thread samples: the status endpoint's throughput while the
  // job runs, against the same server idle (the same number of concurrent clients, in this process)
  const rate = async (p: string) => {
    const t0 = Date.now();
    let n = 0;
    await Promise.all(Array.from({ length: 8 }, async () => {
      while (Date.now() < t0 + 1500) {
        const res = await fetch(srv.url + p);
        assert.equal(res.status, 200);
        await res.arrayBuffer();
        n++;
      }
    }));
    return n / ((Date.now() - t0) / 1000);
  };
  const busy = await rate(`/api/jobs/${long.body.id}`);
  const during = (await get(`/api/jobs/${long.body.id}`)).body;
  assert.equal(during.status, 'running', 'the long job must still be running for the measurement to count');
  assert.ok((during.progress as any).step > 0);
  console.log(`# GET /api/jobs/:id while a job runs: ${busy.toFixed(0)} requests/s (8 concurrent clients, 1.5 s; job at step ${(during.progress as any).step}/250)`);
  const del2 = await fetch(`${srv.url}/api/jobs/${second.body.id}`, { method: 'DELETE' });
  assert.equal(del2.status, 200);
  assert.equal((await get(`/api/jobs/${second.body.id}`)).body.status, 'cancelled');
  assert.equal((await get(`/api/jobs/${third.body.id}`)).body.position, 1);
  const again = await fetch(`${srv.url}/api/jobs/${second.body.id}`, { method: 'DELETE' });
  assert.equal(again.status, 409);

  const evs = readEvents(`${srv.url}/api/jobs/${long.body.id}/events`, untilFinal);
  const del1 = await fetch(`${srv.url}/api/jobs/${long.body.id}`, { method: 'DELETE' });
  assert.equal(del1.status, 200);
  const e = await evs;
  assert.equal(e.at(-1)!.type, 'cancelled');
  const lj = (await get(`/api/jobs/${long.body.id}`)).body;
  assert.equal(lj.status, 'cancelled');
  assert.ok((lj.progress as any).step < 250);
  assert.deepEqual(lj.images, []);
  const thirdDone = await waitDone(third.body.id as string);
  assert.equal(finalStatus(thirdDone), 'done');
  const img = await fetch(`${srv.url}/api/jobs/${long.body.id}/images/0.png`);
  assert.equal(img.status, 409);
  const idle = await rate(`/api/jobs/${long.body.id}`);
  console.log(`# the same with no job running: ${idle.toFixed(0)} requests/s`);
  assert.ok(busy > 0.25 * idle, `a running job must not starve the event loop: ${busy.toFixed(0)} vs ${idle.toFixed(0)} requests/s idle`);
});

test('4xx: limits, bad inputs, uploads checked by their declared size, ids, image indexes, routes', async () => {
  const cases: [unknown, number, RegExp][] = [
    [{ class: 3, width: 128 }, 400, /width 128 is over this server's limit of 64 \(--max-size\)/],
    [{ class: 3, steps: 401 }, 400, /steps 401 is over this server's limit of 400 \(--max-steps\)/],
    [{ class: 3, sampler: 'ddpm' }, 400, /ddpm sampler runs 1000 timesteps; steps 1000 is over this server's limit of 400/],
    [{ class: 3, n: 4 }, 400, /n 4 is over this server's limit of 3 \(--max-n\)/],
    [{ class: 3, width: 18 }, 400, /width 18 must be a multiple of 4/],
    [{ class: 11 }, 400, /class 11 is outside model tiny-class's classes 0…10/],
    [{}, 400, /is class-conditional: give class/],
    [{ class: 3, prompt: 'a cat' }, 400, /prompt is for text-to-image models/],
    [{ class: 3, steps: 0 }, 400, /body\/steps must be >= 1/],
    [{ class: 'three' }, 400, /body\/class must be integer/],
    [{ class: 3, colour: 'red' }, 400, /must NOT have additional properties/],
    [{ class: 3, sampler: 'magic' }, 400, /body\/sampler must be equal to one of the allowed values/],
    [{ class: 3, model: 'nope' }, 400, /unknown model nope; this server has tiny-class, tiny-inpaint/],
    [{ class: 3, mask: b64(leftHalfMask(16, 16)) }, 400, /mode inpaint needs init_image/],
    [{ class: 3, init_image: 'not base64!' }, 400, /init_image: not valid base64/],
    [{ class: 3, init_image: Buffer.from('GIF89a....').toString('base64') }, 400, /init_image: not a PNG or JPEG image/],
    [{ class: 3, init_image: b64(picture(16, 16)), mask: b64(leftHalfMask(8, 8)) }, 400, /the mask is 8×8 but init_image is 16×16/],
    [{ class: 3, init_image: b64(picture(16, 16)), width: 32 }, 400, /width\/height do not apply with init_image/],
    [{ model: 'tiny-inpaint', init_image: b64(picture(16, 16)) }, 400, /mode inpaint needs a mask/],
    [{ class: 3, sampler: 'plms', eta: 0.5 }, 400, /eta does not apply to the plms sampler/],
  ];
  for (const [body, status, msg] of cases) {
    const r = await post(body);
    assert.equal(r.status, status, `${JSON.stringify(body).slice(0, 80)} → ${JSON.stringify(r.body)}`);
    assert.match(r.body.message as string, msg);
    assert.equal(r.body.statusCode, status);
  }
  // An upload that declares 4096×4096 is refused from its header alone (the rest is not image data).
  const header = encodePng(picture(16, 16)).subarray(0, 33);
  header.writeUInt32BE(4096, 16);
  header.writeUInt32BE(4096, 20);
  const big = await post({ class: 3, init_image: Buffer.concat([header, Buffer.alloc(64)]).toString('base64') });
  assert.equal(big.status, 413);
  assert.match(big.body.message as string, /init_image: 4096×4096 pixels = 16777216 is over this server's limit of 4096 \(--max-upload-pixels\)/);
  const wide = await post({ class: 3, init_image: b64(picture(128, 8)) });
  assert.equal(wide.status, 413);
  assert.match(wide.body.message as string, /128×8 has a side over this server's limit of 64 px/);
  // A body over the byte limit: 413 before it is parsed.
  const huge = await post({ class: 3, init_image: 'A'.repeat(300 * 1024) });
  assert.equal(huge.status, 413);
  assert.match(huge.body.message as string, /request body is over this server's limit of 262144 bytes \(--max-body\)/);

  const done = await post({ class: 0, steps: 2, seed: 1, preview: false });
  await waitDone(done.body.id as string);
  const paths: [string, number, RegExp][] = [
    ['/api/jobs/not-an-id', 400, /params\/id must match pattern/],
    ['/api/jobs/00000000-0000-4000-8000-000000000000', 404, /no job 00000000/],
    [`/api/jobs/${done.body.id}/images/1.png`, 404, /has 1 image\(s\): 0…0/],
    [`/api/jobs/${done.body.id}/images/..%2Fjob.json`, 400, /params\/file must match pattern/],
    [`/api/jobs/${done.body.id}/images/00.png`, 400, /params\/file must match pattern/],
    ['/api/jobs/..%2F..%2F..%2Fetc%2Fpasswd/images/0.png', 400, /params\/id must match pattern/],
    ['/etc/passwd', 404, /no route GET \/etc\/passwd/],
    ['/public/app.js', 404, /no route/],
  ];
  for (const [p, status, msg] of paths) {
    const r = await get(p);
    assert.equal(r.status, status, `${p} → ${JSON.stringify(r.body)}`);
    assert.match(r.body.message as string, msg);
  }
  const ok = await fetch(`${srv.url}/api/jobs/${done.body.id}/images/0.png`);
  assert.equal(ok.status, 200);
  const page = await fetch(`${srv.url}/`);
  assert.equal(page.status, 200);
  assert.match(await page.text(), /<script src="\/app.js"/);
});

test('multipart upload: img2img keeps the request parameters; masked img2img on the class model pastes the known pixels', async () => {
  const init = encodePng(picture(16, 16));
  const form = new FormData();
  form.set('class', '5');
  form.set('steps', '6');
  form.set('strength', '0.5');
  form.set('seed', '9');
  form.set('init_image', new Blob([init], { type: 'image/png' }), 'in.png');
  const res = await fetch(`${srv.url}/api/jobs`, { method: 'POST', body: form });
  const r = (await res.json()) as Record<string, string>;
  assert.equal(res.status, 202, JSON.stringify(r));
  const evs = await waitDone(r.id);
  assert.equal(finalStatus(evs), 'done');
  const job = (await get(`/api/jobs/${r.id}`)).body as any;
  assert.equal(job.params.mode, 'img2img');
  assert.equal(job.params.strength, 0.5);
  assert.equal(job.result.strength, '0.5');
  // img2img with strength 0.5 over 6 DDIM steps runs 3 of them
  assert.equal(evs.filter((e) => e.type === 'progress').length, 3);

  const masked = await post({ class: 5, steps: 4, seed: 9, init_image: b64(picture(16, 16)), mask: b64(leftHalfMask(16, 16)) });
  assert.equal(masked.status, 202, JSON.stringify(masked.body));
  await waitDone(masked.body.id as string);
  const out = decodeImage(Buffer.from(await (await fetch(`${srv.url}/api/jobs/${masked.body.id}/images/0.png`)).arrayBuffer()));
  const src = picture(16, 16);
  let kept = 0, changed = 0;
  for (let y = 0; y < 16; y++) for (let x = 0; x < 16; x++) {
    const i = y * 16 + x;
    const same = [0, 1, 2].every((c) => out.data[4 * i + c] === src.data[3 * i + c]);
    if (x >= 8) kept += same ? 1 : 0;
    else changed += same ? 0 : 1;
  }
  assert.equal(kept, 128, 'every pixel outside the mask is the init image\'s');
  assert.ok(changed > 100, `${changed} of 128 masked pixels changed`);
});

test('inpainting model (concat conditioning): known pixels exact, masked ones generated', async () => {
  const r = await post({ model: 'tiny-inpaint', steps: 4, seed: 3, init_image: b64(picture(16, 16)), mask: b64(leftHalfMask(16, 16)) });
  assert.equal(r.status, 202, JSON.stringify(r.body));
  const evs = await waitDone(r.body.id as string);
  assert.equal(finalStatus(evs), 'done', JSON.stringify(evs.at(-1)));
  const png = Buffer.from(await (await fetch(`${srv.url}/api/jobs/${r.body.id}/images/0.png`)).arrayBuffer());
  assert.equal(JSON.parse(readPngText(png).parameters).task, 'inpainting');
  const out = decodeImage(png), src = picture(16, 16);
  let kept = 0;
  for (let y = 0; y < 16; y++) for (let x = 8; x < 16; x++) kept += [0, 1, 2].every((c) => out.data[4 * (y * 16 + x) + c] === src.data[3 * (y * 16 + x) + c]) ? 1 : 0;
  assert.equal(kept, 128);
});

test('token: 401 without it on every /api route, 200 with it; the page stays public; ldm serve refuses a public bind without one', async () => {
  const s = await startServer([{ source: classDir }], path.join(tmp, 'out-token'), { token: 'secret-token-1' });
  try {
    for (const [method, p] of [['GET', '/api/models'], ['GET', '/api/jobs'], ['POST', '/api/jobs'], ['GET', '/api/jobs/00000000-0000-4000-8000-000000000000/events']]) {
      const res = await fetch(s.url + p, { method, headers: { authorization: 'Bearer wrong-token-1', 'content-type': 'application/json' }, body: method === 'POST' ? '{}' : undefined });
      assert.equal(res.status, 401, `${method} ${p}`);
      assert.equal(res.headers.get('www-authenticate'), 'Bearer');
      assert.match(((await res.json()) as { message: string }).message, /needs Authorization: Bearer <token>/);
    }
    const ok = await fetch(`${s.url}/api/models`, { headers: { authorization: 'Bearer secret-token-1' } });
    assert.equal(ok.status, 200);
    assert.equal((await fetch(`${s.url}/`)).status, 200);
  } finally {
    await s.close();
  }
  let err = '';
  const e = console.error;
  console.error = (...a: unknown[]) => void (err += a.join(' '));
  try {
    assert.equal(await main(['serve', '--host', '0.0.0.0', '--model', classDir]), 2);
    assert.match(err, /binding to 0\.0\.0\.0 \(not loopback\) needs --token/);
    err = '';
    assert.equal(await main(['serve', '--max-steps', 'many']), 2);
    assert.match(err, /--max-steps expects a non-negative integer, got "many"/);
  } finally {
    console.error = e;
  }
});
