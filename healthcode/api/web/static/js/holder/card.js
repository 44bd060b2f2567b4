// The status card: colour with its label, icon and guidance (colour is never
// the only signal), masked name and number, "valid until 24:00" and the live
// code renewed every RENEW_MS with a moving bar and a ticking clock.

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

export function stopLive() {
  for (const id of timers) clearInterval(id);
  timers = [];
  $("live").hidden = true;
}

/** Renew the live code for `passText` every RENEW_MS (offline too) until stopped or expired. */
export async function startLive(passText, privateKey, onExpired) {
  stopLive();
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
      return;
    }
    drawQr(canvas, await present(pass, privateKey, Date.now()));
    live.dataset.renewedAt = String(Date.now());
  };
  await renew();
  tick();
  live.hidden = false;
  timers.push(setInterval(renew, RENEW_MS), setInterval(tick, 1000));
  return pass;
}
