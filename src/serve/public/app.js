// The ldm-ts web page: plain JavaScript, no build step, nothing from the network but this server's API.
const $ = (id) => document.getElementById(id);
const state = { models: [], limits: null, model: null, job: null, hasInit: false, token: localStorage.getItem('ldm-token') || '' };

// ---- API ---------------------------------------------------------------------------------------------
function headers(extra = {}) {
  return state.token ? { ...extra, authorization: `Bearer ${state.token}` } : extra;
}
async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: headers(opts.headers) });
  if (res.status === 401) $('token-row').hidden = false;
  const type = res.headers.get('content-type') || '';
  const body = type.includes('json') ? await res.json() : await res.blob();
  if (!res.ok) throw new Error(body && body.message ? body.message : `HTTP ${res.status}`);
  return body;
}
/** Server-sent events read through fetch (so the Authorization header can be sent). */
async function events(path, onEvent) {
  const res = await fetch(path, { headers: headers() });
  if (!res.ok) throw new Error(`events: HTTP ${res.status}`);
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let k;
    while ((k = buf.indexOf('\n\n')) >= 0) {
      const block = buf.slice(0, k);
      buf = buf.slice(k + 2);
      const type = /^event: (.*)$/m.exec(block);
      const data = /^data: (.*)$/m.exec(block);
      if (type && data) onEvent(type[1], JSON.parse(data[1]));
    }
  }
}

// ---- controls ----------------------------------------------------------------------------------------
function option(sel, value, text, selected) {
  const o = document.createElement('option');
  o.value = String(value);
  o.textContent = text;
  if (selected) o.selected = true;
  sel.append(o);
}
function samplerOf(name) {
  return state.model.samplers.find((s) => s.name === name) || state.model.samplers[0];
}
function mode() {
  return $('mode').value;
}
function showFor() {
  const m = state.model;
  if (!m) return;
  const s = samplerOf($('sampler').value);
  const vis = {
    class: !!m.classes, text: m.text, steps: s.options.includes('steps'), eta: s.options.includes('eta'),
    scale: m.text || !!(m.classes && m.classes.uncond !== null), size: mode() === 'generate', init: mode() !== 'generate',
    strength: mode() !== 'generate' && !m.task.includes('inpainting'), mask: mode() === 'inpaint',
  };
  for (const el of document.querySelectorAll('[data-for]')) el.hidden = !vis[el.dataset.for];
  $('canvas-box').hidden = !vis.init || !state.hasInit;
}
function selectModel(name) {
  const m = state.models.find((x) => x.name === name) || state.models[0];
  state.model = m;
  $('model').value = m.name;
  $('model-note').textContent = `${m.task} model · ${m.size.default}×${m.size.default} px (sides multiples of ${m.size.multiple})`;
  $('mode').replaceChildren();
  for (const md of m.modes) option($('mode'), md, md, false);
  $('class').replaceChildren();
  if (m.classes) m.classes.names.forEach((n, i) => i !== m.classes.uncond && option($('class'), i, `${i}: ${n}`, i === 0));
  $('sampler').replaceChildren();
  for (const s of m.samplers) option($('sampler'), s.name, s.name, s.name === m.defaults.sampler);
  for (const id of ['width', 'height']) {
    $(id).replaceChildren();
    for (let v = m.size.multiple; v <= state.limits.maxSize; v += m.size.multiple) option($(id), v, String(v), v === m.size.default);
  }
  $('steps').value = m.defaults.steps;
  $('steps').max = state.limits.maxSteps;
  $('scale').value = m.defaults.scale;
  $('eta').value = m.defaults.eta;
  $('n').max = state.limits.maxN;
  showFor();
}
function newSeed() {
  $('seed').value = Math.floor(Math.random() * 2 ** 31);
}

// ---- init image and mask -----------------------------------------------------------------------------
let painting = false;
function loadInit(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => {
      for (const c of [$('init-canvas'), $('mask-canvas')]) {
        c.width = img.naturalWidth;
        c.height = img.naturalHeight;
      }
      $('init-canvas').getContext('2d').drawImage(img, 0, 0);
      $('mask-canvas').getContext('2d').clearRect(0, 0, img.naturalWidth, img.naturalHeight);
      state.hasInit = true;
      showFor();
      resolve();
    };
    img.onerror = () => reject(new Error('the init image could not be read'));
    img.src = src;
  });
}
function paint(e) {
  const c = $('mask-canvas');
  const r = c.getBoundingClientRect();
  const x = ((e.clientX - r.left) / r.width) * c.width, y = ((e.clientY - r.top) / r.height) * c.height;
  const ctx = c.getContext('2d');
  ctx.fillStyle = '#ff2020';
  ctx.beginPath();
  ctx.arc(x, y, Math.max(0.5, Number($('brush').value) / 2), 0, 2 * Math.PI);
  ctx.fill();
}
/** The painted region as a black/white PNG (white = fill), at the init image's size. */
function maskPng() {
  const c = $('mask-canvas');
  const src = c.getContext('2d').getImageData(0, 0, c.width, c.height);
  const out = document.createElement('canvas');
  out.width = c.width;
  out.height = c.height;
  const ctx = out.getContext('2d');
  const img = ctx.createImageData(c.width, c.height);
  let painted = 0;
  for (let i = 0; i < src.data.length; i += 4) {
    const v = src.data[i + 3] > 0 ? 255 : 0;
    painted += v ? 1 : 0;
    img.data[i] = img.data[i + 1] = img.data[i + 2] = v;
    img.data[i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
  return { png: out.toDataURL('image/png'), painted };
}

// ---- jobs ----------------------------------------------------------------------------------------------
function request() {
  const m = state.model, vis = (id) => !document.querySelector(`[data-for="${id}"]`)?.hidden;
  const body = { model: m.name, mode: mode(), sampler: $('sampler').value, seed: Number($('seed').value), n: Number($('n').value) };
  if (m.classes) body.class = Number($('class').value);
  if (m.text) {
    body.prompt = $('prompt').value;
    if ($('negative_prompt').value) body.negative_prompt = $('negative_prompt').value;
  }
  if (vis('steps')) body.steps = Number($('steps').value);
  if (vis('scale')) body.scale = Number($('scale').value);
  if (vis('eta')) body.eta = Number($('eta').value);
  if (mode() === 'generate') {
    body.width = Number($('width').value);
    body.height = Number($('height').value);
  } else {
    if (!state.hasInit) throw new Error('choose an init image first');
    body.init_image = $('init-canvas').toDataURL('image/png');
    if (vis('strength')) body.strength = Number($('strength').value);
    if (mode() === 'inpaint') {
      const { png, painted } = maskPng();
      if (!painted) throw new Error('paint the region to fill on the image first');
      body.mask = png;
    }
  }
  return body;
}
function setStatus(text) {
  $('status-text').textContent = text;
}
async function submit(ev) {
  ev.preventDefault();
  $('error').textContent = '';
  let body;
  try {
    body = request();
    const r = await api('/api/jobs', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    state.job = r.id;
    $('cancel').disabled = false;
    $('bar').value = 0;
    $('preview').hidden = true;
    setStatus(r.position > 0 ? `queued, position ${r.position}` : 'starting');
    void follow(r.id);
  } catch (e) {
    $('error').textContent = e.message;
  }
}
async function follow(id) {
  const mine = () => state.job === id;
  try {
    await events(`/api/jobs/${id}/events`, (type, d) => {
      if (type === 'state' && d.status === 'queued' && mine()) setStatus(`queued, position ${d.position}`);
      if (type === 'queued' && mine()) setStatus(`queued, position ${d.position}`);
      if (type === 'running' && mine()) setStatus('running');
      if ((type === 'progress' || (type === 'state' && d.progress)) && mine()) {
        const p = type === 'state' ? d.progress : d;
        $('bar').max = p.total;
        $('bar').value = p.step;
        setStatus(`step ${p.step}/${p.total} · ${p.its.toFixed(2)} it/s`);
      }
      if ((d.preview) && mine()) {
        $('preview').src = d.preview;
        $('preview').hidden = false;
      }
      if (type === 'done' || (type === 'state' && d.status === 'done')) void addResults(id);
      if ((type === 'failed' || (type === 'state' && d.status === 'failed')) && mine()) $('error').textContent = `job failed: ${d.error}`;
      if ((type === 'cancelled' || (type === 'state' && d.status === 'cancelled')) && mine()) setStatus('cancelled');
      if (['done', 'failed', 'cancelled'].includes(type) && mine()) $('cancel').disabled = true;
    });
  } catch (e) {
    if (mine()) $('error').textContent = e.message;
  }
}
async function addResults(id) {
  const job = await api(`/api/jobs/${id}`);
  if (state.job === id) {
    setStatus(`done in ${((Date.parse(job.finished) - Date.parse(job.started)) / 1000).toFixed(1)} s`);
    $('bar').value = $('bar').max;
  }
  for (let i = job.images.length - 1; i >= 0; i--) {
    const blob = await api(job.images[i]);
    $('gallery').prepend(card(job, i, URL.createObjectURL(blob)));
  }
}
function describe(p, i) {
  const m = state.models.find((x) => x.name === p.model);
  const what = p.prompt !== undefined ? `"${p.prompt}"` : p.class !== undefined ? (m && m.classes ? m.classes.names[p.class] : `class ${p.class}`) : p.model;
  return `${what} · ${p.mode} · ${p.sampler}${p.sampler === 'ddpm' ? '' : ` ${p.steps} steps`} · scale ${p.scale} · seed ${p.seed + i} · ${p.width}×${p.height}`;
}
function card(job, i, url) {
  const p = job.params;
  const div = document.createElement('div');
  div.className = 'card';
  div.dataset.job = job.id;
  const img = document.createElement('img');
  img.src = url;
  img.alt = describe(p, i);
  img.title = 'reuse these parameters';
  const text = document.createElement('div');
  text.className = 'params';
  text.textContent = describe(p, i);
  const row = document.createElement('div');
  row.className = 'row';
  const btn = (label, fn) => {
    const b = document.createElement('button');
    b.type = 'button';
    b.textContent = label;
    b.onclick = fn;
    row.append(b);
  };
  img.onclick = () => reuse(p, i, true);
  btn('same seed', () => reuse(p, i, true));
  btn('new seed', () => reuse(p, i, false));
  btn('use as init', async () => {
    await loadInit(url);
    if (state.model.modes.includes('img2img')) $('mode').value = 'img2img';
    showFor();
  });
  div.append(img, text, row);
  return div;
}
function reuse(p, i, sameSeed) {
  if (p.model !== state.model.name) selectModel(p.model);
  if (state.model.modes.includes(p.mode) && p.mode === 'generate') $('mode').value = p.mode;
  if (p.class !== undefined) $('class').value = String(p.class);
  if (p.prompt !== undefined) $('prompt').value = p.prompt;
  $('negative_prompt').value = p.negativePrompt || '';
  $('sampler').value = p.sampler;
  $('steps').value = p.steps;
  $('scale').value = p.scale;
  $('eta').value = p.eta;
  if (p.width) $('width').value = String(p.width);
  if (p.height) $('height').value = String(p.height);
  $('n').value = 1;
  if (sameSeed) $('seed').value = p.seed + i;
  else newSeed();
  showFor();
}

// ---- start -------------------------------------------------------------------------------------------------
async function start() {
  $('token').value = state.token;
  $('token').onchange = () => {
    state.token = $('token').value;
    localStorage.setItem('ldm-token', state.token);
    void start();
  };
  try {
    const r = await api('/api/models');
    state.models = r.models;
    state.limits = r.limits;
    $('model').replaceChildren();
    for (const m of r.models) option($('model'), m.name, `${m.name} (${m.task})`, false);
    if (!r.models.length) throw new Error('no model is available yet');
    selectModel(r.models[0].name);
    $('server-note').textContent = `${r.models.length} model(s)`;
    $('error').textContent = '';
  } catch (e) {
    $('error').textContent = e.message;
  }
}
$('model').onchange = () => selectModel($('model').value);
$('mode').onchange = showFor;
$('sampler').onchange = showFor;
$('dice').onclick = newSeed;
$('controls').onsubmit = submit;
$('cancel').onclick = async () => {
  if (!state.job) return;
  try {
    await api(`/api/jobs/${state.job}`, { method: 'DELETE' });
  } catch (e) {
    $('error').textContent = e.message;
  }
};
$('init-file').onchange = () => {
  const f = $('init-file').files[0];
  if (!f) return;
  const reader = new FileReader();
  reader.onload = () => loadInit(reader.result).catch((e) => ($('error').textContent = e.message));
  reader.readAsDataURL(f);
};
$('mask-canvas').onpointerdown = (e) => {
  painting = true;
  $('mask-canvas').setPointerCapture(e.pointerId);
  paint(e);
};
$('mask-canvas').onpointermove = (e) => painting && paint(e);
$('mask-canvas').onpointerup = () => (painting = false);
$('clear-mask').onclick = () => {
  const c = $('mask-canvas');
  c.getContext('2d').clearRect(0, 0, c.width, c.height);
};
newSeed();
void start();
