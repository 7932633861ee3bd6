// Who is using the demo and how it reaches the API: the token, the display
// name and colour. A real app replaces token() with its own login (see the
// README, "Front end"): canvasd only needs a bearer token whose sub is the
// user and whose grants name the canvases.

const TOKEN_KEY = 'canvasd.token';
const NAME_KEY = 'canvasd.name';

const NAMES = ['Ada', 'Grace', 'Alan', 'Linus', 'Barbara', 'Edsger', 'Margaret', 'Ken', 'Frances', 'Dennis', 'Radia', 'Guido'];
export const COLORS = ['#e5484d', '#f76b15', '#d6a300', '#30a46c', '#12a594', '#0090ff', '#6e56cf', '#d6409f'];

// #token=… and #name=… in the address are taken once and then hidden.
function readHash(): void {
  const params = new URLSearchParams(location.hash.slice(1));
  let changed = false;
  const token = params.get('token');
  if (token !== null) {
    sessionStorage.setItem(TOKEN_KEY, token);
    params.delete('token');
    changed = true;
  }
  const name = params.get('name');
  if (name !== null) {
    localStorage.setItem(NAME_KEY, name.slice(0, 40));
    params.delete('name');
    changed = true;
  }
  if (changed) {
    const rest = params.toString();
    history.replaceState(null, '', location.pathname + location.search + (rest ? `#${rest}` : ''));
  }
}
readHash();

export function token(): string | undefined {
  return sessionStorage.getItem(TOKEN_KEY) ?? undefined;
}

/**
 * The token's subject (its user), read without verifying it — only to keep
 * each user's local data apart; the server does the verifying.
 */
export function tokenUser(): string | undefined {
  const part = token()?.split('.')[1];
  if (!part) return undefined;
  try {
    const claims = JSON.parse(atob(part.replace(/-/g, '+').replace(/_/g, '/')));
    return typeof claims.sub === 'string' ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

export function setToken(t: string): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function displayName(): string {
  let n = localStorage.getItem(NAME_KEY);
  if (!n) {
    n = NAMES[Math.floor(Math.random() * NAMES.length)];
    localStorage.setItem(NAME_KEY, n);
  }
  return n;
}

export function setDisplayName(n: string): void {
  localStorage.setItem(NAME_KEY, n.slice(0, 40));
}

export function colorFor(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return COLORS[(h >>> 0) % COLORS.length];
}

export function initials(name: string): string {
  const parts = name.trim().split(/\s+/).filter(Boolean);
  if (parts.length === 0) return '?';
  return (parts[0][0] + (parts.length > 1 ? parts[parts.length - 1][0] : '')).toUpperCase();
}

/** A fetch of the API with the token, if any. */
export async function api(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const t = token();
  if (t) headers.set('Authorization', `Bearer ${t}`);
  if (init.body !== undefined) headers.set('Content-Type', 'application/json');
  return fetch(path, {...init, headers});
}

/** An error message from a JSON error body, or the status. */
export async function errorOf(res: Response): Promise<string> {
  try {
    const body = await res.json();
    if (body && typeof body.error === 'string') return body.error;
  } catch {
    // not JSON
  }
  return `${res.status} ${res.statusText}`;
}

export function newID(prefix: string): string {
  const rnd = crypto.getRandomValues(new Uint32Array(2));
  return `${prefix}${Date.now().toString(36)}${rnd[0].toString(36)}${rnd[1].toString(36)}`.slice(0, 40);
}
