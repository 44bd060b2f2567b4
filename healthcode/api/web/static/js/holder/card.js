// The status card: colour with its label, icon and guidance (colour is never
// the only signal), masked name and number, "valid until 24:00" and the live
// code renewed every RENEW_MS with a moving bar and a ticking clock. The
// screen is kept awake while the code shows (Screen Wake Lock API, where the
// browser has it and allows it; nothing changes where it does not).

import { shanghaiDate, shanghaiTime, t } from "../common.js";
import { RENEW_MS, present, readPass } from "./livecode.js";
import { drawQr } from "./qr.js";

const $ = (id) => document.getElementById(id);
const COLOURS = ["green", "yellow", "red"];
let timers = [];

/** The day a "valid until" instant closes (24:00 of the previous Shanghai date). */
export function validDay(validUntil) {
  return shanghaiDate(new Date(Date.parse(validUntil) - 1));
}

/** Show `entry` ({status, subject, pass?, refreshedAt}); `own`: the holder's own card. */
export function renderCard(entry, own) {
  const { status, subject } = entry;
  const colour = COLOURS.includes(status.colour) ? status.colour : "red";
  const card = $("card");
  card.className = `status-card status-${colour}`;
  card.dataset.colour = colour;
  $("card-label").textContent = document.documentElement.lang === "en" ? status.label_en : status.label_zh;
  $("card-colour").textContent = t(`colour.${colour}`);
  $("card-name").textContent = subject?.masked_name || "";
  $("card-number").textContent = subject?.masked_number || "";
  $("card-valid").textContent = t("holder.card.valid_until", { date: validDay(status.valid_until) });
  $("guidance").textContent = t(`holder.guidance.${colour}`);
  $("refreshed").textContent = entry.refreshedAt
    ? t("holder.card.refreshed", { time: shanghaiTime(new Date(entry.refreshedAt)) })
    : t("holder.card.never_refreshed");
  $("renew").hidden = !own;
  const noCode = $("no-code");
  noCode.hidden = own;
  if (!own) noCode.textContent = t("holder.card.dependant_note");
}

// --- keeping the screen awake while the code shows ----------------------------

const awake = { wanted: false, lock: null };

async function keepAwake() {
  awake.wanted = true;
  if (awake.lock || !navigator.wakeLock?.request || document.visibilityState !== "visible") return;
  let lock;
  try {
    lock = await navigator.wakeLock.request("screen");
  } catch {
    return; // refused (power saving, policy): the card works all the same
  }
  if (!awake.wanted || awake.lock) {
    lock.release?.().catch?.(() => {});
    return;
  }
  awake.lock = lock;
  lock.addEventListener?.("release", () => {
    if (awake.lock === lock) awake.lock = null;
  });
}

function letSleep() {
  awake.wanted = false;
  const lock = awake.lock;
  awake.lock = null;
  try {
    lock?.release?.().catch?.(() => {});
  } catch {
    // already released
  }
}

// The browser drops the lock when the page is hidden: take it again on return.
document.addEventListener("visibilitychange", () => {
  if (awake.wanted && document.visibilityState === "visible") keepAwake();
});

function stopTimers() {
  for (const id of timers) clearInterval(id);
  timers = [];
}

export function stopLive() {
  stopTimers();
  $("live").hidden = true;
  letSleep();
}

/** Renew the live code for `passText` every RENEW_MS (offline too) until stopped or expired. */
export async function startLive(passText, privateKey, onExpired) {
  stopTimers(); // the screen stays awake from one pass to the next
  const pass = await readPass(passText);
  const live = $("live");
  const canvas = $("qr");
  const clock = $("clock");
  const tick = () => {
    clock.textContent = shanghaiTime(new Date());
    clock.dateTime = new Date().toISOString();
  };
  const renew = async () => {
    if (Date.now() >= pass.expiresAt * 1000) {
      stopLive();
      onExpired?.();
      return false;
    }
    drawQr(canvas, await present(pass, privateKey, Date.now()));
    live.dataset.renewedAt = String(Date.now());
    return true;
  };
  if (!(await renew())) return pass;
  tick();
  live.hidden = false;
  keepAwake();
  timers.push(setInterval(renew, RENEW_MS), setInterval(tick, 1000));
  return pass;
}
