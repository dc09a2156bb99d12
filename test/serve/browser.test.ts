// The web page in real headless Chromium (Debian's chromium through playwright-core): generate a
// class-conditional image and watch the progress bar move and the picture land in the gallery, reuse its
// parameters; then paint a mask on an uploaded picture and inpaint it. Screenshots go to test-artifacts/.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { decodeImage, encodePng } from '../../src/io/image.js';
import { listModels } from '../../src/loader/embedded.js';
import { DIGITS, repoRoot, tinyModelDir } from './helpers.js';
import { startServer, type Running } from './server.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? false : `${CHROMIUM} not found (apt-get install chromium): browser test skipped`;
const artifacts = path.join(repoRoot, 'test-artifacts');
const tmp = mkdtempSync(path.join(tmpdir(), 'ldm-serve-browser-'));
let srv: Running, ctx: BrowserContext, page: Page;
const embedded = listModels().find((m) => m.info.default) ?? listModels()[0];
const names = embedded?.info.classNames ?? DIGITS;
const side = embedded?.info.imageSize ?? 16;

before(async () => {
  if (skip) return;
  mkdirSync(artifacts, { recursive: true });
  // The embedded model (the default of ldm serve) when the package ships one, else a tiny class model.
  const classDir = embedded ? undefined : tinyModelDir('class', tmp);
  const classSpec = embedded ? {} : { source: classDir, classNames: path.join(classDir!, 'classes.txt') };
  srv = await startServer([classSpec, { source: tinyModelDir('inpaint', tmp) }], path.join(tmp, 'out'));
  ctx = await chromium.launchPersistentContext(mkdtempSync(path.join(tmpdir(), 'ldm-chromium-')), {
    executablePath: CHROMIUM, headless: true, viewport: { width: 1200, height: 1000 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = ctx.pages()[0] ?? (await ctx.newPage());
  page.setDefaultTimeout(120_000);
  page.on('pageerror', (e) => console.log(`# page error: ${e.message}`));
});
after(async () => {
  await ctx?.close();
  await srv?.close();
});

/** Poll the progress bar until the gallery holds `cards` cards; returns the values seen. */
async function watchProgress(cards: number): Promise<number[]> {
  const seen: number[] = [];
  let last = '';
  const t0 = Date.now();
  while (Date.now() - t0 < 180_000) {
    const s = await page.evaluate(() => ({ v: (globalThis as any).document.getElementById('bar').value, cards: (globalThis as any).document.querySelectorAll('#gallery .card img').length, err: (globalThis as any).document.getElementById('error').textContent, status: (globalThis as any).document.getElementById('status-text').textContent }));
    last = s.status ?? '';
    assert.equal(s.err, '', `the page shows an error: ${s.err}`);
    if (seen.at(-1) !== s.v) seen.push(s.v);
    if (s.cards >= cards) return seen;
    await page.waitForTimeout(30);
  }
  throw new Error(`no result in the gallery after 180 s; progress values ${seen}; status "${last}"`);
}

test('page: generate a class-conditional image, progress bar moves, image lands in the gallery; reuse its seed', { skip }, async () => {
  await page.goto(srv.url, { timeout: 120_000 });
  await page.waitForSelector('#class option', { state: 'attached' });
  const classes = await page.$$eval('#class option', (os) => os.map((o) => o.textContent));
  assert.deepEqual(classes.slice(0, 3), names.slice(0, 3).map((n, i) => `${i}: ${n}`));
  assert.equal(classes.length, 10, 'the "no class" label is not offered');
  assert.equal(await page.isVisible('#prompt'), false, 'no prompt box for a class model');
  await page.selectOption('#class', '3');
  await page.fill('#steps', '20');
  await page.fill('#seed', '1234');
  await page.click('#generate');
  const seen = await watchProgress(1);
  const partial = seen.filter((v) => v > 0 && v < 20);
  assert.ok(partial.length >= 2, `the bar moved through intermediate values: ${seen}`);
  assert.equal(seen.at(-1), 20);
  assert.ok(await page.isVisible('#preview'), 'the x̂₀ preview is shown');
  const card = page.locator('#gallery .card').first();
  assert.ok((await card.locator('.params').innerText()).startsWith(`${names[3]} · generate · ddim 20 steps · scale 3 · seed 1234 · ${side}×${side}`));
  const size = await card.locator('img').evaluate((img: any) => [img.naturalWidth, img.naturalHeight]);
  assert.deepEqual(size, [side, side]);
  await page.screenshot({ path: path.join(artifacts, 'serve-generate.png'), fullPage: true });

  await page.selectOption('#class', '7');
  await card.getByRole('button', { name: 'new seed' }).click();
  assert.notEqual(await page.inputValue('#seed'), '1234');
  assert.equal(await page.inputValue('#class'), '3');
  await card.getByRole('button', { name: 'same seed' }).click();
  assert.equal(await page.inputValue('#seed'), '1234');
  assert.equal(await page.inputValue('#steps'), '20');
});

test('page: upload a picture, paint a mask, inpaint; the unpainted pixels come back unchanged', { skip }, async () => {
  await page.selectOption('#model', 'tiny-inpaint');
  assert.equal(await page.inputValue('#mode'), 'inpaint');
  const w = 16, h = 16, data = new Uint8Array(w * h * 3);
  for (let i = 0; i < w * h; i++) [data[3 * i], data[3 * i + 1], data[3 * i + 2]] = [(i * 11) % 256, 90, (i * 5) % 256];
  await page.setInputFiles('#init-file', { name: 'in.png', mimeType: 'image/png', buffer: encodePng({ width: w, height: h, channels: 3, data }) });
  await page.waitForSelector('#mask-canvas', { state: 'visible' });
  await page.waitForFunction(() => (globalThis as any).document.getElementById('init-canvas').width === 16);
  await page.fill('#brush', '3');
  await page.locator('#mask-canvas').scrollIntoViewIfNeeded();
  const box = (await page.locator('#mask-canvas').boundingBox())!;
  // a stroke down the left third (image x ≈ 2…4): right of x = 8 nothing is painted
  await page.mouse.move(box.x + box.width * 0.15, box.y + box.height * 0.1);
  await page.mouse.down();
  for (let k = 1; k <= 10; k++) await page.mouse.move(box.x + box.width * (0.15 + 0.01 * k), box.y + box.height * (0.1 + 0.08 * k));
  await page.mouse.up();
  await page.fill('#steps', '10');
  const cards = await page.locator('#gallery .card').count();
  await page.click('#generate');
  await watchProgress(cards + 1);
  await page.screenshot({ path: path.join(artifacts, 'serve-inpaint.png'), fullPage: true });
  const jobs = (await (await fetch(`${srv.url}/api/jobs`)).json()) as { jobs: { id: string; model: string; params: Record<string, unknown>; images: string[] }[] };
  const job = jobs.jobs[0];
  assert.equal(job.model, 'tiny-inpaint');
  assert.equal(job.params.mode, 'inpaint');
  const out = decodeImage(Buffer.from(await (await fetch(srv.url + job.images[0])).arrayBuffer()));
  let kept = 0, changed = 0;
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) {
    const i = y * w + x, same = [0, 1, 2].every((c) => out.data[4 * i + c] === data[3 * i + c]);
    if (x >= 8) kept += same ? 1 : 0;
    else changed += same ? 0 : 1;
  }
  assert.equal(kept, 8 * h, 'the unpainted right half is the uploaded picture');
  assert.ok(changed >= 10, `${changed} painted pixels were generated`);
});
