// One canvas: nodes as cards, edges as arrows, live cursors, pan and zoom.
import {connect, wouldCycle, type Edge, type Node, type Peer} from '../src/index.js';
import {ICONS, h, icon, s, toast} from './dom.js';
import {api, colorFor, displayName, errorOf, initials, newID, setDisplayName, token, tokenUser} from './session.js';

type Presence = {name: string; color: string; x?: number; y?: number; sel?: string[]};

type Helpers = {askToken: (reason: string) => Promise<void>; brand: () => HTMLElement};

const MOVE_INTERVAL_MS = 40; // moves sent while dragging, at most 25 a second
const MIN_ZOOM = 0.2;
const MAX_ZOOM = 3;

export async function openBoard(app: HTMLElement, canvasID: string, help: Helpers): Promise<() => Promise<void>> {
  // Check the canvas first: a missing one gets an offer to create it.
  for (;;) {
    const res = await api(`/api/canvases/${canvasID}`);
    if (res.status === 401 || res.status === 403) {
      await help.askToken(res.status === 401 ? 'This canvas needs a token.' : 'Your token does not grant this canvas; paste another.');
      continue;
    }
    if (res.status === 404) {
      const create = h('button', {class: 'btn primary'}, icon(ICONS.plus, 16), 'Create it');
      app.replaceChildren(
        h('header', {class: 'topbar'}, help.brand()),
        h('main', {class: 'home'}, h('div', {class: 'empty'}, h('strong', {}, `There is no canvas “${canvasID}”.`), create, h('a', {href: '/'}, 'All canvases'))),
      );
      await new Promise<void>((resolve) => create.addEventListener('click', () => resolve()));
      const made = await api('/api/canvases', {method: 'POST', body: JSON.stringify({id: canvasID, title: 'Untitled canvas'})});
      if (!made.ok) toast(`Could not create the canvas: ${await errorOf(made)}`, 'error');
      continue;
    }
    if (!res.ok) {
      toast(`Could not open the canvas: ${await errorOf(res)}`, 'error');
    }
    break;
  }

  const me = {name: displayName()};
  const client = await connect({
    canvasID,
    auth: () => token(),
    // Each user's local data apart: a client group belongs to one user.
    userID: tokenUser() ?? 'anon',
    readyTimeout: 3000,
  });
  (window as unknown as {canvasd: unknown}).canvasd = {client};

  // ---- view state ----
  let zoom = 1;
  let panX = 0;
  let panY = 0;
  let nodes = new Map<string, Node>();
  let edges: readonly Edge[] = [];
  let peers: readonly Peer<Presence>[] = [];
  let selected: {kind: 'node' | 'edge'; id: string} | null = null;
  let editing: string | null = null;
  const dragging = new Map<string, {x: number; y: number}>(); // local positions while dragging
  let cursor: {x: number; y: number} | null = null;

  // ---- DOM ----
  const edgeLayer = s('svg', {class: 'edges'});
  const defs = s('defs');
  const marker = (id: string, color: string): SVGMarkerElement => {
    const m = s('marker', {id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto-start-reverse', markerUnits: 'strokeWidth'});
    m.append(s('path', {d: 'M 0 1 L 9 5 L 0 9 z', fill: color}));
    return m;
  };
  defs.append(marker('arrow', '#9b9ba6'), marker('arrow-sel', '#4f46e5'), marker('arrow-draft', '#4f46e5'));
  edgeLayer.append(defs);
  const edgeGroup = s('g');
  const draft = s('path', {class: 'edge draft', 'marker-end': 'url(#arrow-draft)'});
  draft.style.display = 'none';
  edgeLayer.append(edgeGroup, draft);
  const nodeLayer = h('div', {class: 'nodes'});
  const cursorLayer = h('div', {class: 'cursors'});
  const world = h('div', {class: 'world'}, edgeLayer, nodeLayer, cursorLayer);
  const board = h('div', {class: 'board', tabindex: 0, 'data-testid': 'board'}, world);

  const titleInput = h('input', {class: 'title-input', value: '', maxlength: 200, 'aria-label': 'Canvas title', 'data-testid': 'canvas-title'});
  const zoomLabel = h('button', {class: 'tool zoom-label', title: 'Reset zoom'}, '100%');
  const addBtn = h('button', {class: 'tool primary', title: 'Add a note', 'data-testid': 'add-node'}, icon(ICONS.note, 17), h('span', {}, 'Note'));
  const zoomOut = h('button', {class: 'tool', title: 'Zoom out'}, icon(ICONS.minus));
  const zoomIn = h('button', {class: 'tool', title: 'Zoom in'}, icon(ICONS.plus));
  const fitBtn = h('button', {class: 'tool', title: 'Fit to content'}, icon(ICONS.fit));
  const avatars = h('div', {class: 'avatars', 'data-testid': 'avatars'});
  const statusDot = h('span', {class: 'dot'});
  const statusText = h('span', {}, 'Connecting…');
  const status = h('div', {class: 'status', 'data-testid': 'status'}, statusDot, statusText);
  const meBtn = h('button', {class: 'avatar me', title: `You (${me.name}) — click to rename`});

  app.replaceChildren(
    board,
    h('div', {class: 'panel left'}, h('a', {class: 'tool', href: '/', title: 'All canvases'}, icon(ICONS.back)), titleInput),
    h('div', {class: 'panel toolbar'}, addBtn, h('span', {class: 'sep'}), zoomOut, zoomLabel, zoomIn, fitBtn),
    h('div', {class: 'panel right'}, avatars, meBtn, h('span', {class: 'sep'}), status),
    h('div', {class: 'hint'}, 'Double-click to add · drag the dot to link · Delete removes · scroll to pan, ⌘/Ctrl + scroll to zoom'),
  );

  // ---- coordinates ----
  const toWorld = (clientX: number, clientY: number): {x: number; y: number} => {
    const r = board.getBoundingClientRect();
    return {x: (clientX - r.left - panX) / zoom, y: (clientY - r.top - panY) / zoom};
  };
  const applyView = (): void => {
    world.style.transform = `translate(${panX}px, ${panY}px) scale(${zoom})`;
    board.style.backgroundSize = `${24 * zoom}px ${24 * zoom}px`;
    board.style.backgroundPosition = `${panX}px ${panY}px`;
    zoomLabel.textContent = `${Math.round(zoom * 100)}%`;
    for (const el of cursorLayer.children) (el as HTMLElement).style.setProperty('--inv', String(1 / zoom));
  };
  const zoomAt = (factor: number, clientX?: number, clientY?: number): void => {
    const r = board.getBoundingClientRect();
    const cx = clientX ?? r.left + r.width / 2;
    const cy = clientY ?? r.top + r.height / 2;
    const before = toWorld(cx, cy);
    zoom = Math.min(MAX_ZOOM, Math.max(MIN_ZOOM, zoom * factor));
    panX = cx - r.left - before.x * zoom;
    panY = cy - r.top - before.y * zoom;
    applyView();
  };
  const fit = (): void => {
    const list = [...nodes.values()];
    const r = board.getBoundingClientRect();
    if (list.length === 0) {
      zoom = 1;
      panX = r.width / 2;
      panY = r.height / 2;
      return applyView();
    }
    const minX = Math.min(...list.map((n) => n.x));
    const minY = Math.min(...list.map((n) => n.y));
    const maxX = Math.max(...list.map((n) => n.x + n.w));
    const maxY = Math.max(...list.map((n) => n.y + n.h));
    const pad = 96;
    zoom = Math.min(1.25, Math.max(MIN_ZOOM, Math.min((r.width - 2 * pad) / (maxX - minX || 1), (r.height - 2 * pad) / (maxY - minY || 1))));
    panX = r.width / 2 - ((minX + maxX) / 2) * zoom;
    panY = r.height / 2 - ((minY + maxY) / 2) * zoom;
    applyView();
  };

  // ---- presence ----
  const sendPresence = (): void => {
    const st: Presence = {name: me.name, color: colorFor(me.name)};
    if (cursor) {
      st.x = Math.round(cursor.x * 10) / 10;
      st.y = Math.round(cursor.y * 10) / 10;
    }
    if (selected?.kind === 'node') st.sel = [selected.id];
    client.setPresence(st);
  };
  const renderMe = (): void => {
    meBtn.textContent = initials(me.name);
    meBtn.style.background = colorFor(me.name);
    meBtn.title = `You (${me.name}) — click to rename`;
  };
  meBtn.addEventListener('click', () => {
    const n = prompt('Your name, as others see it', me.name)?.trim();
    if (n) {
      me.name = n.slice(0, 40);
      setDisplayName(me.name);
      renderMe();
      sendPresence();
    }
  });
  renderMe();

  // ---- rendering ----
  const nodeEls = new Map<string, HTMLElement>();
  const edgeEls = new Map<string, SVGGElement>();
  let frame = 0;
  const schedule = (): void => {
    if (!frame) frame = requestAnimationFrame(render);
  };
  const pos = (n: Node): {x: number; y: number} => dragging.get(n.id) ?? n;

  function nodeElement(n: Node): HTMLElement {
    const el = h(
      'div',
      {class: 'node', 'data-node-id': n.id},
      h('div', {class: 'node-title'}),
      h('div', {class: 'node-body'}),
      h('div', {class: 'handle', title: 'Drag to link to another card', 'data-testid': 'handle'}),
    );
    el.addEventListener('pointerdown', (e) => nodePointerDown(e, n.id));
    el.addEventListener('dblclick', (e) => {
      e.stopPropagation();
      startEdit(n.id, (e.target as Element).closest('.node-body') ? 'body' : 'title');
    });
    return el;
  }

  function render(): void {
    frame = 0;
    // Nodes.
    const peerSel = new Map<string, string>();
    for (const p of peers) for (const id of p.state.sel ?? []) peerSel.set(id, p.state.color);
    for (const [id, el] of nodeEls) {
      if (!nodes.has(id)) {
        el.remove();
        nodeEls.delete(id);
      }
    }
    for (const n of nodes.values()) {
      let el = nodeEls.get(n.id);
      if (!el) {
        el = nodeElement(n);
        nodeEls.set(n.id, el);
        nodeLayer.append(el);
      }
      const p = pos(n);
      el.style.transform = `translate(${p.x}px, ${p.y}px)`;
      el.style.width = `${n.w}px`;
      el.style.height = `${n.h}px`;
      el.dataset.x = String(p.x);
      el.dataset.y = String(p.y);
      el.classList.toggle('selected', selected?.kind === 'node' && selected.id === n.id);
      el.classList.toggle('dragging', dragging.has(n.id));
      const pc = peerSel.get(n.id);
      el.classList.toggle('peer-selected', pc !== undefined);
      if (pc) el.style.setProperty('--peer', pc);
      if (editing !== n.id) {
        const t = el.querySelector<HTMLElement>('.node-title')!;
        const b = el.querySelector<HTMLElement>('.node-body')!;
        t.textContent = n.title || 'Untitled';
        t.classList.toggle('placeholder', !n.title);
        b.textContent = n.body;
        b.hidden = !n.body;
      }
    }
    // Edges.
    const live = new Set<string>();
    for (const e of edges) {
      const a = nodes.get(e.from);
      const b = nodes.get(e.to);
      if (!a || !b) continue;
      live.add(e.id);
      let g = edgeEls.get(e.id);
      if (!g) {
        g = s('g', {class: 'edge-group', 'data-edge-id': e.id});
        g.append(s('path', {class: 'edge-hit'}), s('path', {class: 'edge', 'marker-end': 'url(#arrow)'}));
        g.addEventListener('pointerdown', (ev) => {
          ev.stopPropagation();
          select({kind: 'edge', id: e.id});
        });
        edgeEls.set(e.id, g);
        edgeGroup.append(g);
      }
      const d = edgePath(a, b);
      const sel = selected?.kind === 'edge' && selected.id === e.id;
      g.classList.toggle('selected', sel);
      for (const p of g.children) p.setAttribute('d', d);
      g.lastElementChild!.setAttribute('marker-end', sel ? 'url(#arrow-sel)' : 'url(#arrow)');
    }
    for (const [id, g] of edgeEls) {
      if (!live.has(id)) {
        g.remove();
        edgeEls.delete(id);
      }
    }
    // Cursors and avatars.
    const seen = new Set<string>();
    for (const p of peers) {
      const st = p.state;
      if (typeof st.name !== 'string') continue;
      seen.add(p.clientID);
      let el = cursorLayer.querySelector<HTMLElement>(`[data-client="${CSS.escape(p.clientID)}"]`);
      if (!el) {
        const arrow = s('svg', {viewBox: '0 0 20 20', width: 20, height: 20});
        arrow.append(s('path', {d: 'M3 2l13 7-6 1.6L7 17z', 'stroke-linejoin': 'round'}));
        el = h('div', {class: 'cursor', 'data-client': p.clientID, 'data-testid': 'cursor'}, arrow, h('span', {class: 'cursor-name'}));
        el.style.setProperty('--inv', String(1 / zoom));
        cursorLayer.append(el);
      }
      el.style.setProperty('--c', st.color);
      el.querySelector('.cursor-name')!.textContent = st.name;
      const visible = typeof st.x === 'number' && typeof st.y === 'number';
      el.hidden = !visible;
      if (visible) el.style.transform = `translate(${st.x}px, ${st.y}px)`;
    }
    for (const el of [...cursorLayer.children] as HTMLElement[]) {
      if (!seen.has(el.dataset.client!)) el.remove();
    }
    const byName = new Map<string, Presence>();
    for (const p of peers) if (typeof p.state.name === 'string') byName.set(p.state.name + p.state.color, p.state);
    avatars.replaceChildren(
      ...[...byName.values()].slice(0, 6).map((st) => {
        const a = h('span', {class: 'avatar', title: st.name}, initials(st.name));
        a.style.background = st.color;
        return a;
      }),
    );
  }

  function edgePath(a: Node, b: Node): string {
    const pa = pos(a);
    const pb = pos(b);
    const ax = pa.x + a.w / 2;
    const ay = pa.y + a.h / 2;
    const bx = pb.x + b.w / 2;
    const by = pb.y + b.h / 2;
    const dx = bx - ax;
    const dy = by - ay;
    let sx: number, sy: number, tx: number, ty: number, nx: number, ny: number;
    if (Math.abs(dx) * (a.h + b.h) >= Math.abs(dy) * (a.w + b.w)) {
      const dir = Math.sign(dx) || 1;
      sx = ax + (dir * a.w) / 2;
      sy = ay;
      tx = bx - (dir * b.w) / 2;
      ty = by;
      nx = dir;
      ny = 0;
    } else {
      const dir = Math.sign(dy) || 1;
      sx = ax;
      sy = ay + (dir * a.h) / 2;
      tx = bx;
      ty = by - (dir * b.h) / 2;
      nx = 0;
      ny = dir;
    }
    const k = Math.max(30, Math.hypot(tx - sx, ty - sy) / 2.4);
    // Stop short of the card so the arrowhead sits on its border.
    tx -= nx * 2;
    ty -= ny * 2;
    return `M ${sx} ${sy} C ${sx + nx * k} ${sy + ny * k}, ${tx - nx * k} ${ty - ny * k}, ${tx} ${ty}`;
  }

  // ---- selection and editing ----
  function select(sel: typeof selected): void {
    if (selected?.kind === sel?.kind && selected?.id === sel?.id) return;
    selected = sel;
    sendPresence();
    schedule();
  }

  function startEdit(id: string, focus: 'title' | 'body'): void {
    const n = nodes.get(id);
    const el = nodeEls.get(id);
    if (!n || !el || editing === id) return;
    finishEdit(true);
    editing = id;
    select({kind: 'node', id});
    el.classList.add('editing');
    const t = h('input', {class: 'edit-title', value: n.title, maxlength: 200, placeholder: 'Title', 'data-testid': 'edit-title'});
    const b = h('textarea', {class: 'edit-body', placeholder: 'Write something…', 'data-testid': 'edit-body'});
    b.value = n.body;
    el.querySelector('.node-title')!.replaceChildren(t);
    const body = el.querySelector<HTMLElement>('.node-body')!;
    body.hidden = false;
    body.replaceChildren(b);
    for (const input of [t, b]) {
      input.addEventListener('pointerdown', (e) => e.stopPropagation());
      input.addEventListener('keydown', (e) => {
        const ke = e as KeyboardEvent;
        e.stopPropagation();
        if (ke.key === 'Escape') finishEdit(false);
        else if (ke.key === 'Enter' && (input === t || ke.metaKey || ke.ctrlKey)) {
          e.preventDefault();
          finishEdit(true);
        }
      });
    }
    (focus === 'body' ? b : t).focus();
    if (focus === 'title') t.select();
  }

  function finishEdit(save: boolean): void {
    const id = editing;
    if (!id) return;
    editing = null;
    const el = nodeEls.get(id);
    const n = nodes.get(id);
    if (el && n && save) {
      const title = el.querySelector<HTMLInputElement>('.edit-title')?.value ?? n.title;
      const body = el.querySelector<HTMLTextAreaElement>('.edit-body')?.value ?? n.body;
      if (title !== n.title || body !== n.body) {
        void client.mutate.updateNode({id, title, body}).then((r) => {
          if (!r.ok) toast(r.error.replace(/^\w+: /, ''), 'error');
        });
      }
    }
    if (el) {
      el.classList.remove('editing');
      el.querySelector('.node-title')!.replaceChildren();
      el.querySelector('.node-body')!.replaceChildren();
    }
    board.focus({preventScroll: true});
    schedule();
  }

  async function addNode(at?: {x: number; y: number}, edit = false): Promise<void> {
    const r = board.getBoundingClientRect();
    const c = at ?? toWorld(r.left + r.width / 2, r.top + r.height / 2);
    const id = newID('n');
    // A little offset per card, so repeated clicks do not stack them exactly.
    const jitter = at ? 0 : (nodes.size % 5) * 24;
    const res = await client.mutate.createNode({id, kind: 'note', x: Math.round(c.x - 100 + jitter), y: Math.round(c.y - 60 + jitter), title: edit ? '' : 'New note'});
    if (!res.ok) return toast(res.error.replace(/^\w+: /, ''), 'error');
    select({kind: 'node', id});
    if (edit) requestAnimationFrame(() => startEdit(id, 'title'));
  }

  // ---- pointer interaction ----
  function nodePointerDown(e: PointerEvent, id: string): void {
    if (e.button !== 0 || editing === id) return;
    e.stopPropagation();
    board.focus({preventScroll: true});
    if ((e.target as Element).closest('.handle')) return startLink(e, id);
    finishEdit(true);
    select({kind: 'node', id});
    const n = nodes.get(id);
    if (!n) return;
    const start = toWorld(e.clientX, e.clientY);
    const origin = {x: n.x, y: n.y};
    let lastSent = 0;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let moved = false;
    const send = (): void => {
      const p = dragging.get(id);
      if (!p) return;
      lastSent = performance.now();
      void client.mutate.moveNode({id, x: p.x, y: p.y});
    };
    const move = (ev: PointerEvent): void => {
      const w = toWorld(ev.clientX, ev.clientY);
      const x = Math.round(origin.x + w.x - start.x);
      const y = Math.round(origin.y + w.y - start.y);
      if (!moved && Math.abs(x - origin.x) + Math.abs(y - origin.y) < 2) return;
      moved = true;
      dragging.set(id, {x, y});
      schedule();
      // Throttled: one move now, the newest after the interval.
      const wait = MOVE_INTERVAL_MS - (performance.now() - lastSent);
      clearTimeout(timer);
      if (wait <= 0) send();
      else timer = setTimeout(send, wait);
    };
    const up = (): void => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      window.removeEventListener('pointercancel', up);
      clearTimeout(timer);
      if (moved) send();
      dragging.delete(id);
      schedule();
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
    window.addEventListener('pointercancel', up);
  }

  function startLink(e: PointerEvent, from: string): void {
    const move = (ev: PointerEvent): void => {
      const a = nodes.get(from);
      if (!a) return;
      const p = toWorld(ev.clientX, ev.clientY);
      const pa = pos(a);
      const sx = pa.x + a.w;
      const sy = pa.y + a.h / 2;
      const k = Math.max(30, Math.abs(p.x - sx) / 2);
      draft.setAttribute('d', `M ${sx} ${sy} C ${sx + k} ${sy}, ${p.x - k} ${p.y}, ${p.x} ${p.y}`);
      draft.style.display = '';
      const over = document.elementFromPoint(ev.clientX, ev.clientY)?.closest<HTMLElement>('.node');
      for (const el of nodeEls.values()) el.classList.toggle('link-target', el === over && over.dataset.nodeId !== from);
    };
    const up = (ev: PointerEvent): void => {
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
      draft.style.display = 'none';
      for (const el of nodeEls.values()) el.classList.remove('link-target');
      const over = document.elementFromPoint(ev.clientX, ev.clientY)?.closest<HTMLElement>('.node');
      const to = over?.dataset.nodeId;
      if (to && to !== from) void link(from, to);
    };
    move(e);
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  }

  async function link(from: string, to: string): Promise<void> {
    if (edges.some((e) => e.from === from && e.to === to)) return toast('These cards are already linked.');
    if (wouldCycle(edges, from, to)) {
      return toast('Cannot link: that arrow would close a loop. Links must not form a cycle.', 'error');
    }
    const res = await client.mutate.createEdge({id: newID('e'), from, to});
    if (!res.ok) toast(res.error.includes('cycle') ? 'Cannot link: that arrow would close a loop.' : res.error.replace(/^\w+: /, ''), 'error');
  }

  board.addEventListener('pointerdown', (e) => {
    if (e.button !== 0 && e.button !== 1) return;
    finishEdit(true);
    board.focus({preventScroll: true});
    select(null);
    const sx = e.clientX;
    const sy = e.clientY;
    const px = panX;
    const py = panY;
    board.classList.add('panning');
    const move = (ev: PointerEvent): void => {
      panX = px + ev.clientX - sx;
      panY = py + ev.clientY - sy;
      applyView();
    };
    const up = (): void => {
      board.classList.remove('panning');
      window.removeEventListener('pointermove', move);
      window.removeEventListener('pointerup', up);
    };
    window.addEventListener('pointermove', move);
    window.addEventListener('pointerup', up);
  });
  board.addEventListener('dblclick', (e) => {
    if ((e.target as Element).closest('.node, .edge-group')) return;
    void addNode(toWorld(e.clientX, e.clientY), true);
  });
  board.addEventListener(
    'wheel',
    (e) => {
      e.preventDefault();
      if (e.ctrlKey || e.metaKey) zoomAt(Math.exp(-e.deltaY * 0.01), e.clientX, e.clientY);
      else {
        panX -= e.deltaX;
        panY -= e.deltaY;
        applyView();
      }
    },
    {passive: false},
  );
  board.addEventListener('pointermove', (e) => {
    cursor = toWorld(e.clientX, e.clientY);
    sendPresence();
  });
  board.addEventListener('pointerleave', () => {
    cursor = null;
    sendPresence();
  });
  const onKey = (e: KeyboardEvent): void => {
    const t = e.target as HTMLElement;
    if (t.closest('input, textarea')) return;
    if ((e.key === 'Delete' || e.key === 'Backspace') && selected) {
      e.preventDefault();
      const sel = selected;
      selected = null;
      if (sel.kind === 'node') void client.mutate.deleteNode({id: sel.id});
      else void client.mutate.deleteEdge({id: sel.id});
      sendPresence();
    } else if (e.key === 'Escape') {
      select(null);
    } else if (e.key === 'Enter' && selected?.kind === 'node') {
      e.preventDefault();
      startEdit(selected.id, 'title');
    } else if ((e.key === '=' || e.key === '+') && (e.metaKey || e.ctrlKey)) {
      e.preventDefault();
      zoomAt(1.2);
    } else if (e.key === '-' && (e.metaKey || e.ctrlKey)) {
      e.preventDefault();
      zoomAt(1 / 1.2);
    }
  };
  window.addEventListener('keydown', onKey);

  addBtn.addEventListener('click', () => void addNode());
  zoomIn.addEventListener('click', () => zoomAt(1.2));
  zoomOut.addEventListener('click', () => zoomAt(1 / 1.2));
  zoomLabel.addEventListener('click', () => {
    zoomAt(1 / zoom);
  });
  fitBtn.addEventListener('click', fit);

  titleInput.addEventListener('change', () => {
    void client.mutate.updateCanvas({title: titleInput.value.trim() || 'Untitled canvas'});
  });
  titleInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') titleInput.blur();
  });

  // ---- subscriptions ----
  let fitted = false;
  const stops = [
    client.nodes().subscribe((list) => {
      nodes = new Map(list.map((n) => [n.id, n]));
      if (selected?.kind === 'node' && !nodes.has(selected.id)) selected = null;
      if (editing && !nodes.has(editing)) editing = null;
      if (!fitted && list.length > 0) {
        fitted = true;
        fit();
      }
      schedule();
    }),
    client.edges().subscribe((list) => {
      edges = list;
      if (selected?.kind === 'edge' && !list.some((e) => e.id === selected!.id)) selected = null;
      schedule();
    }),
    client.presence<Presence>().subscribe((list) => {
      peers = list;
      schedule();
    }),
    client.canvas().subscribe((c) => {
      if (c && document.activeElement !== titleInput) titleInput.value = c.title;
      document.title = c?.title ? `${c.title} · canvasd` : 'canvasd';
    }),
  ];
  const renderStatus = (): void => {
    const online = client.connected.value;
    const pending = client.pending.value;
    const st = client.stream.value;
    status.dataset.online = String(online);
    status.dataset.pending = String(pending);
    status.classList.toggle('offline', !online);
    let text = online ? 'Live' : st === 'not-found' ? 'Canvas deleted' : st === 'unauthorized' ? 'Signed out' : st === 'connecting' ? 'Connecting…' : 'Offline';
    if (pending > 0) text += ` · ${pending} unsent`;
    statusText.textContent = text;
    status.title = online ? 'Connected: changes sync live' : 'Not connected: changes are kept here and sent when the connection is back';
  };
  stops.push(client.connected.subscribe(renderStatus), client.pending.subscribe(renderStatus), client.stream.subscribe(renderStatus));

  if (!fitted) fit();
  applyView();
  sendPresence();
  board.focus({preventScroll: true});

  return async () => {
    for (const stop of stops) stop();
    window.removeEventListener('keydown', onKey);
    await client.close();
  };
}
