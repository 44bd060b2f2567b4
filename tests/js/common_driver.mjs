// Drives the pages' shared module (static/js/common.js) under Node for
// tests/test_web_common_js.py: language choice, strings, Asia/Shanghai times
// and the API helper's problem handling, with a stubbed fetch. Prints one JSON
// object with every result.
const url = new URL(process.argv[2]);
const lang = process.argv[3] || '';
const search = process.argv[4] || '';

const store = new Map();
globalThis.window = {
  location: { search, href: `http://localhost/guard${search}` },
  localStorage: {
    getItem: (k) => (store.has(k) ? store.get(k) : null),
    setItem: (k, v) => store.set(k, String(v)),
    removeItem: (k) => store.delete(k),
  },
  history: { replaceState() {} },
};
Object.defineProperty(globalThis, 'navigator', {
  value: { languages: lang ? [lang] : [], language: lang },
  configurable: true,
});
globalThis.document = {
  documentElement: { lang: 'zh-CN' },
  querySelectorAll: () => [],
  querySelector: () => null,
  dispatchEvent() {},
  getElementById: () => null,
};
globalThis.CustomEvent = class extends Event {
  constructor(type, init) {
    super(type);
    this.detail = init?.detail;
  }
};

const m = await import(url);
const out = { lang: m.lang() };
out.t_busy_zh = m.t('error.busy', { seconds: 7 }, 'zh');
out.t_busy_en = m.t('error.busy', { seconds: 7 }, 'en');
out.t_missing = m.t('no.such.key');
out.time = m.shanghaiTime(new Date('2026-11-26T02:03:04Z'));
out.time_short = m.shanghaiTime('2026-11-26T02:03:04Z', { seconds: false, date: false });
out.date_late = m.shanghaiDate(new Date('2026-11-26T17:00:00Z'));
out.until_midnight = m.shanghaiValidUntil('2026-11-26T16:00:00Z');
out.until_other = m.shanghaiValidUntil('2026-11-26T10:30:00Z');

async function outcome(fetchImpl, path = '/x', options = {}) {
  globalThis.fetch = fetchImpl;
  try {
    return { ok: await m.api(path, options) };
  } catch (err) {
    return {
      problem: {
        isProblem: err instanceof m.ApiProblem,
        status: err.status,
        code: err.code,
        message_zh: err.message_zh,
        message_en: err.message_en,
        retryAfter: err.retryAfter,
        zh: err.localized?.('zh'),
        en: err.localized?.('en'),
      },
    };
  }
}

const json = (status, body, headers = {}) => async () =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
let seen = null;
out.ok = await outcome(async (path, init) => {
  seen = { path, method: init.method, auth: init.headers.get('authorization'), body: init.body };
  return json(200, { admit: true })();
}, '/guard/verifications', { json: { presentation: 'HCP1:x' }, token: 'hc_guard_1.s' });
out.seen = seen;
out.problem_429 = await outcome(
  json(429, { status: 429, code: 'rate_limited', message_zh: '请求过多。', message_en: 'Too many requests.' }, { 'retry-after': '12' }),
);
out.plain_503 = await outcome(async () => new Response('busy', { status: 503, headers: { 'retry-after': '3' } }));
out.offline = await outcome(async () => {
  throw new TypeError('Failed to fetch');
});
out.not_json_500 = await outcome(async () => new Response('<html>', { status: 500 }));
out.empty_204 = await outcome(async () => new Response(null, { status: 204 }));
console.log(JSON.stringify(out));
