// Small inline SVG sparklines for a flow's metrics (no library; SVG attributes, no style).
import {h, fmtNumber} from './dom.js';

const W = 240;
const H = 56;
const PAD = 4;

/** points: [{t: ms, v: number|null}] oldest first -> an <svg> sparkline. */
export function sparkline(name, points) {
  const vals = points.map(p => p.v).filter(v => typeof v === 'number');
  const last = vals.length ? vals[vals.length - 1] : null;
  const lo = vals.length ? Math.min(...vals) : 0;
  const hi = vals.length ? Math.max(...vals) : 0;
  const label = `${name}: ${last === null ? 'no value' : fmtNumber(last)} ` +
                `(min ${fmtNumber(lo)}, max ${fmtNumber(hi)}, ${points.length} samples)`;
  const svg = h('svg:svg', {class: 'sparkline', viewBox: `0 0 ${W} ${H}`, width: W, height: H,
                            role: 'img', 'aria-label': label, 'data-testid': 'sparkline',
                            'data-samples': points.length});
  svg.append(h('svg:title', {text: label}));
  svg.append(h('svg:rect', {x: 0, y: 0, width: W, height: H, fill: 'none', stroke: '#d0d7de', rx: 3}));
  if (points.length < 1 || !vals.length) return svg;
  const t0 = points[0].t;
  const t1 = points[points.length - 1].t;
  const span = Math.max(1, t1 - t0);
  const range = hi - lo || 1;
  const x = t => PAD + ((t - t0) / span) * (W - 2 * PAD);
  const y = v => H - PAD - ((v - lo) / range) * (H - 2 * PAD);
  const coords = points.filter(p => typeof p.v === 'number')
    .map(p => `${(points.length === 1 ? W / 2 : x(p.t)).toFixed(1)},${(hi === lo ? H / 2 : y(p.v)).toFixed(1)}`);
  svg.append(h('svg:polyline', {points: coords.join(' '), fill: 'none', stroke: '#0969da', 'stroke-width': 1.5,
                                'stroke-linejoin': 'round'}));
  const [lx, ly] = coords[coords.length - 1].split(',');
  svg.append(h('svg:circle', {cx: lx, cy: ly, r: 2.5, fill: '#0969da'}));
  return svg;
}

/** Per-second rate of the last two samples, or null. */
export function rate(points) {
  if (points.length < 2) return null;
  const a = points[points.length - 2];
  const b = points[points.length - 1];
  if (typeof a.v !== 'number' || typeof b.v !== 'number' || b.t === a.t) return null;
  return (b.v - a.v) / ((b.t - a.t) / 1000);
}
