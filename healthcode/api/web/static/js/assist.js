// 老幼助查: the guard checks a person without a phone (16 or under, 60 or over)
// by document number. The masked result shows for the server's
// `display_seconds`, then is cleared; the typed number is cleared at once.
import {
  ApiProblem,
  api,
  clearGuardToken,
  guardToken,
  initPage,
  lang,
  mountGuardSignIn,
  shanghaiValidUntil,
  showError,
  t,
} from '/static/js/common.js';

const $ = (id) => document.getElementById(id);
const state = { timer: null, kinds: [] };

function showSignedIn(signedIn) {
  $('signin').hidden = signedIn;
  $('check').hidden = !signedIn;
  (signedIn ? $('number') : $('token')).focus();
}

function kindName(kind) {
  return lang() === 'en' ? kind.name_en : kind.name_zh;
}

function fillKinds() {
  const select = $('kind');
  const chosen = select.value;
  for (const option of [...select.options].slice(1)) option.remove();
  for (const kind of state.kinds) {
    const option = document.createElement('option');
    option.value = kind.kind;
    option.textContent = kindName(kind);
    select.append(option);
  }
  select.value = chosen;
  updateStateField();
}

async function loadKinds() {
  try {
    const kinds = await api('/documents/kinds');
    state.kinds = (kinds || []).filter((k) => (k.inputs || []).includes('number'));
    fillKinds();
  } catch {
    // "detect automatically" still works
  }
}

function updateStateField() {
  const isPassport = $('kind').value === 'passport';
  $('state-field').hidden = !isPassport;
  if (!isPassport) $('issuing-state').value = '';
}

function clearResult(announce) {
  if (state.timer) clearInterval(state.timer);
  state.timer = null;
  const box = $('result');
  box.hidden = true;
  box.className = 'result-card';
  for (const id of ['result-label', 'result-name', 'result-number', 'result-valid', 'result-countdown']) {
    $(id).textContent = '';
  }
  $('result-cleared').hidden = !announce;
}

function showResult(result) {
  clearResult(false);
  const { status } = result;
  const box = $('result');
  box.classList.add(`status-${status.colour}`);
  box.dataset.colour = status.colour;
  const colour = t(`colour.${status.colour}`);
  const label = lang() === 'en' ? `${status.label_en}（${status.label_zh}）` : `${status.label_zh}（${status.label_en}）`;
  $('result-label').textContent = `${colour} · ${label}`;
  $('result-name').textContent = result.masked_name;
  $('result-number').textContent = result.masked_number;
  $('result-valid').textContent = `${t('guard.verdict.valid_until')}: ${shanghaiValidUntil(status.valid_until)}`;
  let left = Math.max(1, Number(result.display_seconds) || 10);
  const countdown = () => {
    $('result-countdown').textContent = t('assist.result.clears_in', { seconds: left });
  };
  countdown();
  box.hidden = false;
  state.timer = setInterval(() => {
    left -= 1;
    if (left <= 0) clearResult(true);
    else countdown();
  }, 1000);
}

async function submit(event) {
  event.preventDefault();
  const number = $('number').value.trim();
  const error = $('assist-error');
  if (!number) {
    showError(error, t('assist.empty'));
    $('number').focus();
    return;
  }
  const body = { number };
  if ($('kind').value) body.kind = $('kind').value;
  const issuingState = $('issuing-state').value.trim().toUpperCase();
  if (issuingState) body.issuing_state = issuingState;
  showError(error, null);
  clearResult(false);
  const button = $('assist-submit');
  button.disabled = true;
  try {
    const result = await api('/guard/assisted-checks', { json: body, token: guardToken() });
    $('number').value = ''; // nothing kept on the page
    showResult(result);
  } catch (err) {
    if (err instanceof ApiProblem && (err.status === 401 || err.status === 403)) {
      clearGuardToken();
      showSignedIn(false);
      showError($('signin-error'), t('guard.signin.rejected'));
      return;
    }
    showError(error, err);
  } finally {
    button.disabled = false;
  }
}

initPage();
mountGuardSignIn(() => showSignedIn(true));
$('kind').addEventListener('change', updateStateField);
$('assist-form').addEventListener('submit', submit);
document.addEventListener('hc:lang', fillKinds);
// Leaving the page (or hiding it) clears what was shown.
window.addEventListener('pagehide', () => clearResult(false));
document.addEventListener('visibilitychange', () => {
  if (document.hidden) clearResult(false);
});
showSignedIn(Boolean(guardToken()));
loadKinds();
