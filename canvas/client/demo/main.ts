// The demo canvas app canvasd serves: / lists the canvases and creates
// one, /c/{canvasID} opens one.
import {ICONS, h, icon, relativeTime, toast} from './dom.js';
import {api, errorOf, newID, setToken} from './session.js';
import {openBoard} from './board.js';

const app = document.getElementById('app')!;

function brand(): HTMLElement {
  return h('a', {class: 'brand', href: '/'}, h('img', {src: '/assets/icon.svg', alt: '', width: 24, height: 24}), h('span', {}, 'canvasd'));
}

/** Asks for a token when the server wants one; resolves once one is set. */
export function askToken(reason: string): Promise<void> {
  return new Promise((resolve) => {
    const input = h('input', {type: 'password', placeholder: 'Paste a bearer token', autocomplete: 'off', 'data-testid': 'token-input'});
    const form = h(
      'form',
      {class: 'dialog'},
      h('div', {class: 'dialog-icon'}, icon(ICONS.key, 20)),
      h('h2', {}, 'Sign in to canvasd'),
      h('p', {class: 'muted'}, reason),
      input,
      h('button', {class: 'btn primary', type: 'submit'}, 'Continue'),
      h('p', {class: 'fine'}, 'The token stays in this tab. You can also open the page with #token=… in its address.'),
    );
    const backdrop = h('div', {class: 'backdrop'}, form);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      backdrop.remove();
      resolve();
    });
    document.body.append(backdrop);
    input.focus();
  });
}

type CanvasInfo = {id: string; title: string; version: number; createdAt: string};

async function home(): Promise<void> {
  document.title = 'canvasd';
  const list = h('div', {class: 'cards', 'data-testid': 'canvas-list'});
  const more = h('button', {class: 'btn ghost', hidden: true}, 'Show more');
  const titleInput = h('input', {placeholder: 'Name your canvas', maxlength: 200, 'data-testid': 'new-title'});
  const form = h('form', {class: 'create'}, titleInput, h('button', {class: 'btn primary', type: 'submit', 'data-testid': 'create-canvas'}, icon(ICONS.plus, 16), 'New canvas'));
  app.replaceChildren(
    h('header', {class: 'topbar'}, brand(), h('span', {class: 'muted small'}, 'Collaborative canvases, synced live')),
    h('main', {class: 'home'}, h('div', {class: 'home-head'}, h('div', {}, h('h1', {}, 'Canvases'), h('p', {class: 'muted'}, 'Open one to edit it together, or start a new one.')), form), list, more),
  );

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const title = titleInput.value.trim() || 'Untitled canvas';
    const res = await api('/api/canvases', {method: 'POST', body: JSON.stringify({id: newID('c'), title})});
    if (res.status === 401) return void askToken('This server needs a token to create canvases.').then(home);
    if (!res.ok) return toast(`Could not create the canvas: ${await errorOf(res)}`, 'error');
    const c = (await res.json()) as CanvasInfo;
    navigate(`/c/${encodeURIComponent(c.id)}`);
  });

  let after: string | null = null;
  const load = async (): Promise<void> => {
    const q = new URLSearchParams({limit: '48'});
    if (after) q.set('after', after);
    const res = await api(`/api/canvases?${q}`);
    if (res.status === 401) return void askToken('This server needs a token to list canvases.').then(home);
    if (!res.ok) {
      list.replaceChildren(h('div', {class: 'empty'}, `Canvases could not be listed (${await errorOf(res)}).`));
      return;
    }
    const body = (await res.json()) as {canvases: CanvasInfo[]; next: string | null};
    if (!after && body.canvases.length === 0) {
      list.replaceChildren(h('div', {class: 'empty'}, h('strong', {}, 'No canvases yet.'), h('span', {class: 'muted'}, 'Create the first one above.')));
    }
    for (const c of body.canvases) {
      list.append(
        h(
          'a',
          {class: 'card', href: `/c/${encodeURIComponent(c.id)}`, 'data-canvas-id': c.id},
          h('div', {class: 'card-preview'}, h('span'), h('span'), h('span')),
          h('div', {class: 'card-title'}, c.title || 'Untitled canvas'),
          h('div', {class: 'card-meta'}, `${relativeTime(c.createdAt)} · ${c.version} ${c.version === 1 ? 'change' : 'changes'}`),
        ),
      );
    }
    after = body.next;
    more.hidden = !after;
  };
  more.addEventListener('click', () => void load());
  await load();
}

export function navigate(path: string): void {
  history.pushState(null, '', path);
  void route();
}

let leave: (() => Promise<void>) | undefined;

async function route(): Promise<void> {
  if (leave) {
    const l = leave;
    leave = undefined;
    await l();
  }
  const m = /^\/c\/([A-Za-z0-9_-]{1,64})\/?$/.exec(location.pathname);
  if (m) {
    leave = await openBoard(app, m[1], {askToken, brand});
  } else {
    await home();
  }
}

document.addEventListener('click', (e) => {
  const a = (e.target as Element).closest?.('a');
  if (!a || a.target || e.metaKey || e.ctrlKey || e.shiftKey || e.button !== 0) return;
  const url = new URL(a.href, location.href);
  if (url.origin !== location.origin) return;
  e.preventDefault();
  navigate(url.pathname);
});
window.addEventListener('popstate', () => void route());
void route();
