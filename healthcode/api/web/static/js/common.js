// Shared by every page: language (t, applyI18n, the switch), the API helper
// with problem-document handling, and Asia/Shanghai time formatting.
import { STRINGS } from './i18n.js';

export const LANGS = ['zh', 'en'];
const LANG_KEY = 'hc.lang';

function storage() {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

function fromTag(tag) {
  const lower = String(tag || '').toLowerCase();
  if (lower.startsWith('zh')) return 'zh';
  if (lower.startsWith('en')) return 'en';
  return null;
}

/** The page language: ?lang=, then the stored choice, then the browser's
 * languages (Accept-Language), then the server's reading of Accept-Language
 * (<html lang>), then Chinese. */
export function lang() {
  const query = new URLSearchParams(window.location.search).get('lang');
  if (LANGS.includes(query)) {
    storage()?.setItem(LANG_KEY, query);
    return query;
  }
  const stored = storage()?.getItem(LANG_KEY);
  if (LANGS.includes(stored)) return stored;
  for (const tag of navigator.languages || [navigator.language]) {
    const found = fromTag(tag);
    if (found) return found;
  }
  return fromTag(document.documentElement.lang) || 'zh';
}

/** Choose a language, remember it and re-render every [data-i18n] element. */
export function setLang(value) {
  if (!LANGS.includes(value)) return;
  storage()?.setItem(LANG_KEY, value);
  const url = new URL(window.location.href);
  if (url.searchParams.has('lang')) {
    url.searchParams.set('lang', value);
    window.history.replaceState(null, '', url);
  }
  applyI18n();
  document.dispatchEvent(new CustomEvent('hc:lang', { detail: value }));
}

/** The string for `key` in the page language; `{name}` filled from `vars`. */
export function t(key, vars = {}, language = lang()) {
  const entry = STRINGS[key];
  let text = entry ? (entry[language] ?? entry.zh) : key;
  for (const [name, value] of Object.entries(vars)) {
    text = text.replaceAll(`{${name}}`, String(value));
  }
  return text;
}

/** Fill [data-i18n="key"] (textContent) and [data-i18n-attr="attr:key;attr:key"]. */
export function applyI18n(root = document) {
  const language = lang();
  document.documentElement.lang = language === 'zh' ? 'zh-CN' : 'en';
  for (const el of root.querySelectorAll('[data-i18n]')) {
    el.textContent = t(el.dataset.i18n, {}, language);
  }
  for (const el of root.querySelectorAll('[data-i18n-attr]')) {
    for (const pair of el.dataset.i18nAttr.split(';')) {
      const [attr, key] = pair.split(':').map((s) => s.trim());
      if (attr && key) el.setAttribute(attr, t(key, {}, language));
    }
  }
  const title = document.querySelector('title[data-i18n]');
  if (title) document.title = title.textContent;
}

/** Make `button` the language switch (shows the other language's name). */
export function mountLangSwitch(button) {
  if (!button) return;
  button.dataset.i18n = 'lang.switch';
  button.dataset.i18nAttr = 'aria-label:lang.switch.label';
  button.addEventListener('click', () => setLang(lang() === 'zh' ? 'en' : 'zh'));
}

/** Both languages of a message, the page language first. */
export function bilingual(zh, en) {
  return lang() === 'en' ? `${en} / ${zh}` : `${zh} / ${en}`;
}

// --- API -------------------------------------------------------------------

/** A failed call: the API's problem document, or one made here for network
 * failures (code `offline`, `timeout`) and non-problem answers. */
export class ApiProblem extends Error {
  constructor({
    status = 0,
    code,
    message_zh,
    message_en,
    retryAfter = null,
    details = {},
    saysWait = false,
  }) {
    super(message_en || code);
    this.name = 'ApiProblem';
    this.status = status;
    this.code = code;
    this.message_zh = message_zh;
    this.message_en = message_en;
    this.retryAfter = retryAfter;
    this.details = details;
    this.saysWait = saysWait; // the message already names the wait
  }

  /** The message in the page language (with the wait for 429/503). */
  localized(language = lang()) {
    const base = language === 'en' ? this.message_en : this.message_zh;
    if (!this.saysWait && this.retryAfter != null && (this.status === 429 || this.status === 503)) {
      return `${base} ${t('error.retry_in', { seconds: this.retryAfter }, language)}`;
    }
    return base;
  }
}

function retryAfterSeconds(value) {
  if (!value) return null;
  const seconds = Number(value);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const date = Date.parse(value);
  return Number.isNaN(date) ? null : Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

function messages(key, vars) {
  return { message_zh: t(key, vars, 'zh'), message_en: t(key, vars, 'en') };
}

/**
 * Call the API. `options`: method, json (a body sent as JSON), body (sent as
 * is, e.g. FormData), headers, token (sent as `Authorization: Bearer`),
 * signal, timeoutMs (default 20 s). Answers the parsed JSON (or null for an
 * empty body); throws ApiProblem with code, message_zh, message_en, status,
 * retryAfter (seconds, from Retry-After) and details.
 */
export async function api(path, options = {}) {
  const { method, json, body, token, signal, timeoutMs = 20000 } = options;
  const headers = new Headers(options.headers || {});
  headers.set('Accept', 'application/json, application/problem+json');
  let payload = body;
  if (json !== undefined) {
    headers.set('Content-Type', 'application/json');
    payload = JSON.stringify(json);
  }
  if (token) headers.set('Authorization', `Bearer ${token}`);
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort('timeout'), timeoutMs);
  signal?.addEventListener('abort', () => controller.abort(signal.reason), { once: true });
  let response;
  try {
    response = await fetch(path, {
      method: method || (payload === undefined ? 'GET' : 'POST'),
      headers,
      body: payload,
      signal: controller.signal,
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch (err) {
    if (controller.signal.aborted && controller.signal.reason === 'timeout') {
      throw new ApiProblem({ code: 'timeout', ...messages('error.timeout') });
    }
    if (signal?.aborted) throw err;
    throw new ApiProblem({ code: 'offline', ...messages('error.offline') });
  } finally {
    clearTimeout(timer);
  }
  const text = await response.text().catch(() => '');
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.ok) return data;
  const retryAfter = retryAfterSeconds(response.headers.get('Retry-After'));
  if (data && typeof data === 'object' && data.code) {
    throw new ApiProblem({
      status: response.status,
      code: data.code,
      message_zh: data.message_zh || data.detail || data.code,
      message_en: data.message_en || data.detail || data.code,
      retryAfter,
      details: data.details || {},
    });
  }
  if (response.status === 429 || response.status === 503) {
    throw new ApiProblem({
      status: response.status,
      code: response.status === 429 ? 'rate_limited' : 'unavailable',
      ...messages('error.busy', { seconds: retryAfter ?? 5 }),
      retryAfter: retryAfter ?? 5,
      saysWait: true,
    });
  }
  throw new ApiProblem({
    status: response.status,
    code: `http_${response.status}`,
    ...messages('error.unexpected', { status: response.status }),
    retryAfter,
  });
}

/** Any error as a message in the page language. */
export function errorText(err, language = lang()) {
  if (err instanceof ApiProblem) return err.localized(language);
  return t('error.unexpected', { status: err?.name || 'error' }, language);
}

/** Show `err` (or a string) in `el` (a role="alert" element), or hide it when null. */
export function showError(el, err) {
  if (!el) return;
  if (err == null) {
    el.hidden = true;
    el.textContent = '';
    return;
  }
  el.textContent = typeof err === 'string' ? err : errorText(err);
  el.hidden = false;
}

/** A camera error (getUserMedia) as an i18n key. */
export function cameraErrorKey(err) {
  const name = err?.name || '';
  if (name === 'NotAllowedError' || name === 'SecurityError') return 'error.camera_denied';
  if (name === 'NotFoundError' || name === 'OverconstrainedError') return 'error.camera_missing';
  return 'error.camera_failed';
}

// --- time (always Asia/Shanghai) ---------------------------------------------

export const TIME_ZONE = 'Asia/Shanghai';

function parts(date, options) {
  const d = date instanceof Date ? date : new Date(date);
  const out = {};
  for (const p of new Intl.DateTimeFormat('en-GB', {
    timeZone: TIME_ZONE,
    hourCycle: 'h23',
    ...options,
  }).formatToParts(d)) {
    out[p.type] = p.value;
  }
  return out;
}

/** "2026-11-30 20:15:03" in Asia/Shanghai (`seconds: false` drops the seconds;
 * `date: false` gives the time only). */
export function shanghaiTime(date = new Date(), { seconds = true, date: withDate = true } = {}) {
  const p = parts(date, {
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
  const time = seconds ? `${p.hour}:${p.minute}:${p.second}` : `${p.hour}:${p.minute}`;
  return withDate ? `${p.year}-${p.month}-${p.day} ${time}` : time;
}

/** An end-of-day instant as people say it: midnight Asia/Shanghai is
 * "2026-11-30 24:00" (the day it ends), any other time "2026-11-30 18:30". */
export function shanghaiValidUntil(date) {
  const d = date instanceof Date ? date : new Date(date);
  const p = parts(d, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  if (p.hour === '00' && p.minute === '00' && p.second === '00') {
    return `${shanghaiDate(new Date(d.getTime() - 1000))} 24:00`;
  }
  return shanghaiTime(d, { seconds: false });
}

/** "2026-11-30" in Asia/Shanghai. */
export function shanghaiDate(date = new Date()) {
  const p = parts(date, { year: 'numeric', month: '2-digit', day: '2-digit' });
  return `${p.year}-${p.month}-${p.day}`;
}

/** Start the page: language, switch button (#lang-switch), strings. */
export function initPage() {
  mountLangSwitch(document.getElementById('lang-switch'));
  applyI18n();
}

// --- the guard's token: this tab only (sessionStorage), never localStorage ----

const GUARD_TOKEN_KEY = 'hc.guardToken';

export function guardToken() {
  try {
    return window.sessionStorage.getItem(GUARD_TOKEN_KEY);
  } catch {
    return null;
  }
}

export function setGuardToken(token) {
  window.sessionStorage.setItem(GUARD_TOKEN_KEY, token);
}

export function clearGuardToken() {
  try {
    window.sessionStorage.removeItem(GUARD_TOKEN_KEY);
  } catch {
    // storage unavailable: nothing kept
  }
}

/** Check a guard token without side effects: a malformed presentation is
 * refused offline (200, ok false) for a valid token, 401/403 otherwise.
 * Answers true/false; throws ApiProblem for other failures (offline, 429...). */
export async function checkGuardToken(token) {
  try {
    await api('/guard/verifications', { json: { presentation: 'HCP1:' }, token });
    return true;
  } catch (err) {
    if (err instanceof ApiProblem && (err.status === 401 || err.status === 403)) return false;
    throw err;
  }
}

/** Wire a sign-in form (#signin-form with #token, #signin-error) that keeps the
 * token in sessionStorage; `onSignedIn()` runs once a token is accepted. */
export function mountGuardSignIn(onSignedIn) {
  const form = document.getElementById('signin-form');
  const input = document.getElementById('token');
  const error = document.getElementById('signin-error');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const token = input.value.trim();
    if (!token) {
      showError(error, t('guard.signin.empty'));
      input.focus();
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    button.disabled = true;
    showError(error, null);
    try {
      if (!(await checkGuardToken(token))) {
        showError(error, t('guard.signin.rejected'));
        input.select();
        return;
      }
      setGuardToken(token);
      input.value = '';
      onSignedIn();
    } catch (err) {
      showError(error, err);
    } finally {
      button.disabled = false;
    }
  });
}
