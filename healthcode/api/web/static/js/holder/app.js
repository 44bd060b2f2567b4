// The holder app: enrollment, the status card with its live code, face-only
// renewal and dependants. Works offline once loaded (sw.js + IndexedDB).

import { ApiProblem, initPage, lang, shanghaiTime, showError, t } from "../common.js";
import * as api from "./api.js";
import { renderCard, startLive, stopLive } from "./card.js";
import { deviceKeys, publicKeySpki, setSubjectId, subjectId } from "./device.js";
import { collectDocument } from "./enroll.js";
import { answerForm, faceCheck } from "./face.js";
import * as store from "./store.js";

const $ = (id) => document.getElementById(id);
const MAX_DEPENDANTS = 4;
const state = { card: null, dependants: [], current: "me", notes: [] };

function showOffline(err) {
  const offline = err instanceof ApiProblem && (err.code === "offline" || err.code === "timeout");
  const banner = $("offline");
  banner.hidden = !offline;
  if (offline) {
    const at = state.card?.refreshedAt;
    banner.textContent = t("holder.card.offline", { time: at ? shanghaiTime(new Date(at)) : "—" });
  }
  return offline;
}

function renderPeople() {
  const nav = $("people");
  nav.hidden = state.dependants.length === 0;
  const button = (key, label) => {
    const b = document.createElement("button");
    b.type = "button";
    b.className = "small";
    b.textContent = label;
    b.setAttribute("aria-pressed", String(state.current === key));
    b.onclick = () => {
      state.current = key;
      render();
    };
    return b;
  };
  nav.replaceChildren(
    button("me", t("holder.people.me")),
    ...state.dependants.map((d) => button(`slot${d.slot}`, d.subject.masked_name)),
  );
}

/** What the server said the person should know and nothing stopped (a soft
 * capture, a field of the document photo corrected: `warnings` of an
 * enrollment, renewal or dependant answer), in the page's language, until
 * dismissed. */
function showNotes(warnings) {
  state.notes = warnings ?? [];
  renderNotes();
}

function renderNotes() {
  $("card-notes").hidden = state.notes.length === 0;
  $("card-notes-list").replaceChildren(
    ...state.notes.map((w) => {
      const item = document.createElement("li");
      item.textContent = lang() === "en" ? w.message_en : w.message_zh;
      return item;
    }),
  );
}

async function render() {
  $("boot").hidden = true;
  renderNotes();
  $("card-view").hidden = false;
  renderPeople();
  const dependant = state.dependants.find((d) => `slot${d.slot}` === state.current);
  if (dependant) {
    stopLive();
    renderCard({ ...dependant, refreshedAt: state.dependantsAt }, false);
    return;
  }
  if (!state.card) return;
  renderCard(state.card, true);
  if (state.card.pass && Date.now() < Date.parse(state.card.status.valid_until)) {
    const pair = await deviceKeys();
    await startLive(state.card.pass, pair.privateKey, () => refresh(true));
  } else stopLive();
}

/** Today's status, a pass when needed (`newPass`: always), then the dependants. */
async function refresh(newPass = false) {
  showError($("card-error"), null);
  try {
    const status = await api.myStatus();
    const old = state.card;
    const stale =
      newPass || !old?.pass || old.status.colour !== status.colour || old.status.valid_until !== status.valid_until;
    const pass = stale ? await api.issuePass() : null;
    state.card = {
      subject: old?.subject || (await store.get("subject")),
      status: pass ? pass.status : status,
      pass: pass ? pass.text : old.pass,
      refreshedAt: Date.now(),
    };
    await store.set("card", state.card);
    state.dependants = await api.myDependants();
    state.dependantsAt = Date.now();
    await store.set("dependants", { list: state.dependants, at: state.dependantsAt });
    showOffline(null);
  } catch (err) {
    if (!showOffline(err)) showError($("card-error"), err);
  }
  await render();
}

async function enrollFlow() {
  $("boot").hidden = true;
  const spki = await publicKeySpki((await deviceKeys()).publicKey);
  for (;;) {
    const fields = await collectDocument("holder.enroll.heading", false);
    try {
      const result = await faceCheck("enroll", (nonce, frames, capture) =>
        api.enroll(answerForm(nonce, frames, capture, { ...fields, device_public_key: spki })),
      );
      await store.set("subject", result.subject);
      await setSubjectId(result.subject.subject_id);
      state.card = null;
      state.notes = result.warnings ?? [];
      return refresh(true);
    } catch (err) {
      if (err.message !== "cancelled") throw err;
    }
  }
}

async function renewFlow() {
  $("card-view").hidden = true;
  stopLive();
  try {
    const result = await faceCheck("renew", (nonce, frames, capture) => api.renew(answerForm(nonce, frames, capture)));
    state.notes = result.warnings ?? [];
    await refresh(true);
  } catch {
    await render();
  }
}

async function dependantFlow() {
  if (state.dependants.length >= MAX_DEPENDANTS) {
    showError($("card-error"), t("holder.dependant.full"));
    return;
  }
  $("card-view").hidden = true;
  stopLive();
  try {
    const fields = await collectDocument("holder.dependant.heading", true);
    const added = await faceCheck("dependant", (nonce, frames, capture) =>
      api.addDependant(answerForm(nonce, frames, capture, fields)),
    );
    state.notes = added.warnings ?? [];
    await refresh();
  } catch {
    await render();
  }
}

async function main() {
  initPage();
  document.addEventListener("hc:lang", () => (state.card ? render() : renderNotes()));
  if ("serviceWorker" in navigator) navigator.serviceWorker.register("/sw.js").catch(() => {});
  $("refresh").onclick = () => refresh();
  $("renew").onclick = renewFlow;
  $("add-dependant").onclick = dependantFlow;
  $("card-notes-ok").onclick = () => showNotes([]);
  if (!(await subjectId())) return enrollFlow();
  state.card = await store.get("card");
  const deps = await store.get("dependants");
  if (deps) Object.assign(state, { dependants: deps.list, dependantsAt: deps.at });
  if (state.card) await render();
  await refresh();
}

main().catch((err) => {
  $("boot").hidden = true;
  showError($("card-error"), err);
  $("card-view").hidden = false;
});
