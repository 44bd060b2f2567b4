// The guard's page: sign in (token in sessionStorage), scan a live code with
// the camera (jsQR, vendored) or from an image, verify it with the API and
// show a full-screen verdict that cannot be misread: 通行 ADMIT only when the
// API says `admit: true`; 禁止通行 DO NOT ADMIT for everything else.
import {
  ApiProblem,
  api,
  cameraErrorKey,
  clearGuardToken,
  guardToken,
  initPage,
  lang,
  mountGuardSignIn,
  shanghaiTime,
  shanghaiValidUntil,
  showError,
  t,
} from '/static/js/common.js';

const $ = (id) => document.getElementById(id);
const PREFIX = 'HCP1:';
const SCAN_INTERVAL_MS = 120;
const MAX_SCAN_SIDE = 720;

const state = {
  stream: null,
  timer: null,
  busy: false, // verifying or showing a verdict: no decoding
  lastRejected: '',
  lastPresentation: null,
  audio: null,
};

// --- sign in / out -------------------------------------------------------------

function showSignedIn(signedIn) {
  $('signin').hidden = signedIn;
  $('scanner').hidden = !signedIn;
  $('signout').hidden = !signedIn;
  if (!signedIn) {
    stopCamera();
    $('token').focus();
  }
}

function signOut(reasonKey) {
  clearGuardToken();
  hideVerdict();
  showSignedIn(false);
  if (reasonKey) showError($('signin-error'), t(reasonKey));
}

// --- feedback: sound and vibration, where the browser allows -------------------

function unlockAudio() {
  // Created on a user gesture so that the browser lets it play later.
  if (state.audio || !window.AudioContext) return;
  try {
    state.audio = new window.AudioContext();
  } catch {
    state.audio = null;
  }
}

function beep(admit) {
  const ctx = state.audio;
  if (ctx) {
    try {
      if (ctx.state === 'suspended') ctx.resume();
      // Admit: one short high tone. Refuse: three low tones.
      const tones = admit ? [[880, 0, 0.18]] : [[220, 0, 0.22], [220, 0.3, 0.22], [220, 0.6, 0.22]];
      for (const [freq, start, length] of tones) {
        const osc = ctx.createOscillator();
        const gain = ctx.createGain();
        osc.type = admit ? 'sine' : 'square';
        osc.frequency.value = freq;
        gain.gain.value = 0.2;
        osc.connect(gain).connect(ctx.destination);
        osc.start(ctx.currentTime + start);
        osc.stop(ctx.currentTime + start + length);
      }
    } catch {
      // no sound: the screen says it all
    }
  }
  try {
    navigator.vibrate?.(admit ? 120 : [300, 120, 300, 120, 300]);
  } catch {
    // not allowed
  }
}

// --- verdict ----------------------------------------------------------------------

function fact(dl, labelKey, value) {
  if (!value) return;
  const dt = document.createElement('dt');
  dt.textContent = t(labelKey);
  const dd = document.createElement('dd');
  dd.textContent = value;
  dl.append(dt, dd);
}

function colourText(result) {
  const zh = result.label_zh || '';
  const en = result.label_en || '';
  const name = result.colour ? t(`colour.${result.colour}`) : '';
  const label = lang() === 'en' ? `${en}（${zh}）` : `${zh}（${en}）`;
  return name ? `${name} · ${label}` : label;
}

/** Show the verdict for an API answer, or for an error (`error` set). */
function showVerdict(result, error = null) {
  const box = $('verdict');
  const admit = error === null && result?.admit === true; // strictly true, nothing else
  box.className = `verdict ${admit ? 'admit' : 'deny'}`;
  if (!admit && result?.colour && ['yellow', 'red'].includes(result.colour)) {
    box.classList.add(`status-${result.colour}`);
  }
  box.dataset.admit = String(admit);
  box.dataset.code = error ? error.code : (result?.code ?? '');
  $('verdict-icon').textContent = admit ? '✔' : '✖';
  $('verdict-zh').textContent = admit ? '通行' : '禁止通行';
  $('verdict-en').textContent = admit ? 'ADMIT' : 'DO NOT ADMIT';

  const detail = $('verdict-detail');
  const dl = $('verdict-facts');
  dl.replaceChildren();
  if (error) {
    detail.textContent = `${t('guard.verdict.error')}: ${error.localized('zh')} / ${error.localized('en')}`;
  } else if (result.ok && result.colour) {
    // Genuine and current: the colour decides; its label in words, never colour alone.
    detail.textContent = colourText(result);
  } else {
    // A refusal: why, in both languages.
    detail.textContent = `${t('guard.verdict.reason')}: ${result.message_zh} / ${result.message_en}`;
  }
  if (!error && result) {
    const holder = [result.masked_name, result.masked_number].filter(Boolean).join(' ');
    fact(dl, 'guard.verdict.holder', holder);
    if (result.valid_until) fact(dl, 'guard.verdict.valid_until', shanghaiValidUntil(result.valid_until));
  }
  fact(dl, 'guard.verdict.checked_at', shanghaiTime(new Date()));
  dl.hidden = dl.childElementCount === 0;

  box.hidden = false;
  document.body.classList.add('has-verdict');
  $('verdict-next').focus();
  beep(admit);
}

function hideVerdict() {
  $('verdict').hidden = true;
  document.body.classList.remove('has-verdict');
}

// --- verifying ----------------------------------------------------------------------

async function verify(presentation) {
  state.busy = true;
  state.lastPresentation = presentation;
  $('scan-status').textContent = t('guard.scan.checking');
  showError($('scan-error'), null);
  try {
    const result = await api('/guard/verifications', {
      json: { presentation },
      token: guardToken(),
    });
    showVerdict(result);
  } catch (err) {
    if (err instanceof ApiProblem && (err.status === 401 || err.status === 403)) {
      state.busy = false;
      signOut('guard.signin.rejected');
      return;
    }
    showVerdict(null, err instanceof ApiProblem ? err : new ApiProblem({
      code: 'error',
      message_zh: t('error.unexpected', { status: '?' }, 'zh'),
      message_en: t('error.unexpected', { status: '?' }, 'en'),
    }));
  } finally {
    $('scan-status').textContent = '';
  }
}

function handleText(text) {
  const value = (text || '').trim();
  if (!value.startsWith(PREFIX)) {
    if (value !== state.lastRejected) {
      state.lastRejected = value;
      showError($('scan-error'), t('guard.scan.not_ours'));
    }
    return false;
  }
  state.lastRejected = '';
  // The same live code still in front of the camera after "scan next": skip it.
  if (value === state.lastPresentation && state.stream) return false;
  verify(value);
  return true;
}

// --- decoding -------------------------------------------------------------------------

const canvas = document.createElement('canvas');
const ctx2d = canvas.getContext('2d', { willReadFrequently: true });

function decode(source, width, height, maxSide, inversion) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const w = Math.max(1, Math.round(width * scale));
  const h = Math.max(1, Math.round(height * scale));
  canvas.width = w;
  canvas.height = h;
  ctx2d.drawImage(source, 0, 0, w, h);
  const image = ctx2d.getImageData(0, 0, w, h);
  const found = window.jsQR?.(image.data, w, h, { inversionAttempts: inversion });
  return found ? found.data : null;
}

function tick() {
  state.timer = null;
  const video = $('video');
  if (!state.stream) return;
  if (!state.busy && video.readyState >= 2 && video.videoWidth > 0) {
    const text = decode(video, video.videoWidth, video.videoHeight, MAX_SCAN_SIDE, 'dontInvert');
    if (text) handleText(text);
  }
  state.timer = setTimeout(tick, SCAN_INTERVAL_MS);
}

async function startCamera() {
  unlockAudio();
  showError($('scan-error'), null);
  if (!navigator.mediaDevices?.getUserMedia) {
    showError($('scan-error'), t('error.camera_missing'));
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: 'environment' }, width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (err) {
    state.stream = null;
    showError($('scan-error'), t(cameraErrorKey(err)));
    return;
  }
  const video = $('video');
  video.srcObject = state.stream;
  $('camera').hidden = false;
  $('start-camera').hidden = true;
  $('stop-camera').hidden = false;
  try {
    await video.play();
  } catch {
    // autoplay of a muted inline video is allowed; ignore a race with stop
  }
  state.busy = false;
  tick();
}

function stopCamera() {
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  for (const track of state.stream?.getTracks() ?? []) track.stop();
  state.stream = null;
  const video = $('video');
  if (video) video.srcObject = null;
  if ($('camera')) $('camera').hidden = true;
  if ($('start-camera')) $('start-camera').hidden = false;
  if ($('stop-camera')) $('stop-camera').hidden = true;
}

async function pickImage(event) {
  unlockAudio();
  const file = event.target.files?.[0];
  event.target.value = '';
  if (!file) return;
  showError($('scan-error'), null);
  let text = null;
  try {
    const bitmap = await createImageBitmap(file);
    for (const side of [1600, 800, 400]) {
      text = decode(bitmap, bitmap.width, bitmap.height, side, 'attemptBoth');
      if (text) break;
    }
    bitmap.close?.();
  } catch {
    text = null;
  }
  if (!text) {
    showError($('scan-error'), t('guard.scan.none_in_image'));
    return;
  }
  state.lastRejected = '';
  state.lastPresentation = null; // a picked image is always checked
  handleText(text);
}

function next() {
  hideVerdict();
  state.busy = false; // decoding resumes on the running camera
  (state.stream ? $('stop-camera') : $('start-camera')).focus();
}

// --- start ------------------------------------------------------------------------------

initPage();
mountGuardSignIn(() => {
  unlockAudio();
  showSignedIn(true);
  $('start-camera').focus();
});
$('signout').addEventListener('click', () => signOut(null));
$('start-camera').addEventListener('click', startCamera);
$('stop-camera').addEventListener('click', stopCamera);
$('pick-image').addEventListener('change', pickImage);
$('verdict-next').addEventListener('click', next);
document.addEventListener('keydown', (event) => {
  if (!$('verdict').hidden && (event.key === 'Enter' || event.key === ' ' || event.key === 'Escape')) {
    event.preventDefault();
    next();
  }
});
document.addEventListener('visibilitychange', () => {
  if (document.hidden) stopCamera();
});
showSignedIn(Boolean(guardToken()));
