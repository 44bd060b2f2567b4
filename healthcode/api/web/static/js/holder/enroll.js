// Enrollment (and a dependant's): the privacy notice before any capture, the
// document (kind; typed number, data-page photo with an MRZ guide, or a file),
// then a masked confirmation. Resolves with the document fields.

import { cameraErrorKey, lang, showError, t } from "../common.js";
import { documentKinds } from "./api.js";
import { grabFrame, startCamera, stopCamera } from "./camera.js";

const $ = (id) => document.getElementById(id);
let kinds = [];

/** Surname only: the first word of a Latin name, the first character of a Chinese one. */
export function maskName(name) {
  const clean = name.trim();
  if (/\s/.test(clean)) return clean.split(/\s+/)[0].toUpperCase();
  return Array.from(clean)[0] || "";
}

/** First two and last two characters, the rest as "*". */
export function maskNumber(number) {
  const clean = number.replace(/\s+/g, "").toUpperCase();
  if (clean.length <= 4) return "*".repeat(clean.length);
  return clean.slice(0, 2) + "*".repeat(clean.length - 4) + clean.slice(-2);
}

const kindName = (k) => (lang() === "en" ? k.name_en : k.name_zh);

async function fillKinds() {
  if (!kinds.length) kinds = await documentKinds();
  const select = $("kind");
  select.replaceChildren(
    ...kinds.map((k) => {
      const option = new Option(kindName(k), k.kind);
      option.dataset.inputs = k.inputs.join(" ");
      return option;
    }),
  );
}

function show(step) {
  for (const id of ["step-privacy", "step-document", "step-confirm"]) $(id).hidden = id !== step;
}

function how() {
  return document.querySelector('input[name="how"]:checked').value;
}

function documentForm(state) {
  const video = $("doc-video");
  const sync = () => {
    const mode = how();
    $("doc-number").hidden = mode !== "number";
    $("doc-camera").hidden = mode !== "camera";
    $("doc-file").hidden = mode !== "file";
    if (mode === "camera") {
      startCamera(video, "environment").catch((err) => showError($("doc-error"), t(cameraErrorKey(err))));
    } else stopCamera(video);
  };
  for (const radio of document.querySelectorAll('input[name="how"]')) radio.onchange = sync;
  const preview = (blob) => {
    state.image = blob;
    $("doc-preview").src = URL.createObjectURL(blob);
    $("doc-preview").hidden = false;
  };
  $("doc-shoot").onclick = () => grabFrame(video, 0.92).then(preview, (err) => showError($("doc-error"), String(err)));
  $("doc-image").onchange = (e) => e.target.files[0] && preview(e.target.files[0]);
  sync();
}

function readDocument(state) {
  const name = $("declared-name").value.trim();
  const mode = how();
  const number = $("number").value.replace(/\s+/g, "").toUpperCase();
  if (!name) return t("holder.doc.need_name");
  if (mode === "number" && !number) return t("holder.doc.need_number");
  if (mode !== "number" && !state.image) return t("holder.doc.need_image");
  state.fields = {
    kind: $("kind").value,
    declared_name: name,
    number: mode === "number" ? number : null,
    document_image: mode === "number" ? null : state.image,
  };
  return null;
}

function confirmStep(state) {
  const f = state.fields;
  const kind = kinds.find((k) => k.kind === f.kind);
  $("confirm-kind").textContent = kind ? kindName(kind) : f.kind;
  $("confirm-name").textContent = maskName(f.declared_name);
  $("confirm-number").textContent = f.number ? maskNumber(f.number) : t("holder.doc.from_photo");
  show("step-confirm");
}

/** Walk the document steps; `heading`: the i18n key of the section title. */
export async function collectDocument(heading, cancellable) {
  const state = { image: null, fields: null };
  $("enroll-heading").textContent = t(heading);
  $("enroll-view").hidden = false;
  $("enroll-cancel").hidden = !cancellable;
  showError($("doc-error"), null);
  show("step-privacy");
  return new Promise((resolve, reject) => {
    const finish = (ok) => {
      stopCamera($("doc-video"));
      $("enroll-view").hidden = true;
      if (ok) resolve(state.fields);
      else reject(new Error("cancelled"));
    };
    $("enroll-cancel").onclick = () => finish(false);
    $("privacy-ok").onclick = async () => {
      try {
        await fillKinds();
      } catch (err) {
        showError($("doc-error"), err);
      }
      show("step-document");
      documentForm(state);
    };
    $("step-document").onsubmit = (e) => {
      e.preventDefault();
      const problem = readDocument(state);
      showError($("doc-error"), problem);
      if (!problem) {
        stopCamera($("doc-video"));
        confirmStep(state);
      }
    };
    $("confirm-back").onclick = () => {
      show("step-document");
      documentForm(state);
    };
    $("confirm-ok").onclick = () => finish(true);
  });
}
