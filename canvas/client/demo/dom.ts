// Small DOM helpers: elements from a tag, attributes and children.

type Child = Node | string | null | undefined | false;

export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Record<string, string | number | boolean | EventListener | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';

export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number> = {}, ...children: SVGElement[]): SVGElementTagNameMap[K] {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  el.append(...children);
  return el;
}

/** An inline icon from an SVG path list (24×24, stroked). */
export function icon(paths: string, size = 18): SVGSVGElement {
  const svg = s('svg', {viewBox: '0 0 24 24', width: size, height: size, fill: 'none', stroke: 'currentColor', 'stroke-width': 2, 'stroke-linecap': 'round', 'stroke-linejoin': 'round', 'aria-hidden': 'true'});
  for (const d of paths.split('|')) svg.append(s('path', {d}));
  return svg;
}

export const ICONS = {
  plus: 'M12 5v14|M5 12h14',
  minus: 'M5 12h14',
  back: 'M15 18l-6-6 6-6',
  fit: 'M4 9V5a1 1 0 0 1 1-1h4|M20 9V5a1 1 0 0 0-1-1h-4|M4 15v4a1 1 0 0 0 1 1h4|M20 15v4a1 1 0 0 1-1 1h-4',
  note: 'M5 4h14a1 1 0 0 1 1 1v10l-5 5H5a1 1 0 0 1-1-1V5a1 1 0 0 1 1-1z|M15 20v-5h5',
  arrow: 'M5 12h14|M13 6l6 6-6 6',
  trash: 'M4 7h16|M10 11v6|M14 11v6|M6 7l1 12a1 1 0 0 0 1 1h8a1 1 0 0 0 1-1l1-12|M9 7V4h6v3',
  key: 'M15 7a4 4 0 1 1-3.9 5H9v2H7v2H4v-3l5.1-5.1A4 4 0 0 1 15 7z',
};

export function relativeTime(iso: string): string {
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '';
  const s = Math.round((Date.now() - t) / 1000);
  if (s < 60) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const hrs = Math.round(m / 60);
  if (hrs < 24) return `${hrs} h ago`;
  const d = Math.round(hrs / 24);
  if (d < 30) return `${d} d ago`;
  return new Date(t).toLocaleDateString();
}

let toastTimer: ReturnType<typeof setTimeout> | undefined;

/** A short message at the bottom of the page. */
export function toast(message: string, kind: 'info' | 'error' = 'info'): void {
  let el = document.querySelector<HTMLElement>('.toast');
  if (!el) {
    el = h('div', {class: 'toast', role: 'status', 'aria-live': 'polite', 'data-testid': 'toast'});
    document.body.append(el);
  }
  el.textContent = message;
  el.dataset.kind = kind;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el!.classList.remove('show'), 3500);
}
