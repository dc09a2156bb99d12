// A loss-curve picture as a small standalone SVG: one panel per series (log-scale y when the values span
// more than a decade), the raw values thin and a moving average thick, step on the x axis.

export interface Series {
  name: string;
  points: [number, number][];
}

const W = 520, H = 200, ML = 64, MR = 16, MT = 24, MB = 30;

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function fmt(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  return a >= 1e4 || a < 1e-3 ? v.toExponential(1) : Number(v.toPrecision(3)).toString();
}

function smooth(ys: number[], win: number): number[] {
  const out: number[] = [];
  let s = 0;
  for (let i = 0; i < ys.length; i++) {
    s += ys[i];
    if (i >= win) s -= ys[i - win];
    out.push(s / Math.min(i + 1, win));
  }
  return out;
}

function panel(s: Series, y0: number): string {
  const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const parts: string[] = [`<g transform="translate(0,${y0})">`, `<text x="${ML}" y="16" font-size="13" font-family="sans-serif">${esc(s.name)}</text>`];
  const pw = W - ML - MR, ph = H - MT - MB;
  parts.push(`<rect x="${ML}" y="${MT}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`);
  if (pts.length === 0) return parts.concat('</g>').join('');
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const xmin = Math.min(...xs), xmax = Math.max(...xs, xmin + 1);
  const positive = ys.every((y) => y > 0);
  let ymin = Math.min(...ys), ymax = Math.max(...ys);
  const log = positive && ymax / ymin > 10;
  const tf = (y: number) => (log ? Math.log10(y) : y);
  let lo = tf(ymin), hi = tf(ymax);
  if (hi - lo < 1e-12) {
    lo -= 0.5 * (Math.abs(lo) || 1);
    hi += 0.5 * (Math.abs(hi) || 1);
  }
  const X = (x: number) => ML + ((x - xmin) / (xmax - xmin)) * pw;
  const Y = (y: number) => MT + ph - ((tf(y) - lo) / (hi - lo)) * ph;
  const line = (vals: number[], style: string) => `<polyline fill="none" ${style} points="${vals.map((y, i) => `${X(xs[i]).toFixed(1)},${Y(y).toFixed(1)}`).join(' ')}"/>`;
  parts.push(line(ys, 'stroke="#9ecae1" stroke-width="1"'));
  if (pts.length > 10) parts.push(line(smooth(ys, Math.max(5, Math.round(pts.length / 30))), 'stroke="#08519c" stroke-width="2"'));
  for (let k = 0; k <= 4; k++) {
    const v = lo + ((hi - lo) * k) / 4;
    const yy = MT + ph - (ph * k) / 4;
    parts.push(`<text x="${ML - 4}" y="${(yy + 4).toFixed(1)}" font-size="10" text-anchor="end" font-family="sans-serif">${fmt(log ? 10 ** v : v)}</text>`);
  }
  for (let k = 0; k <= 4; k++) {
    const v = xmin + ((xmax - xmin) * k) / 4;
    parts.push(`<text x="${(ML + (pw * k) / 4).toFixed(1)}" y="${MT + ph + 14}" font-size="10" text-anchor="middle" font-family="sans-serif">${Math.round(v)}</text>`);
  }
  parts.push(`<text x="${W - MR}" y="${MT + ph + 26}" font-size="10" text-anchor="end" font-family="sans-serif">step${log ? ' (log y)' : ''}</text>`);
  return parts.concat('</g>').join('');
}

/** An SVG document with one panel per series, stacked. */
export function lossCurveSvg(series: Series[]): string {
  const h = Math.max(1, series.length) * H;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${h}" viewBox="0 0 ${W} ${h}"><rect width="100%" height="100%" fill="white"/>${series.map((s, i) => panel(s, i * H)).join('')}</svg>\n`;
}
