// The face check: a server challenge, one action at a time over a live
// preview, frames as JPEG; the server's reason on failure and a retry with a
// fresh challenge that keeps everything entered before.

import { cameraErrorKey, errorText, lang, showError, t } from "../common.js";
import { challenge } from "./api.js";
import { grabFrame, sleep, startCamera, stopCamera } from "./camera.js";

const $ = (id) => document.getElementById(id);
const FRAMES_PER_ACTION = 6; // the server allows 8 per action, plus 2
const FRAME_GAP_MS = 180;
const SETTLE_MS = 900;

async function film(video, actions) {
  const frames = [await grabFrame(video)];
  for (const [i, action] of actions.entries()) {
    $("face-step").textContent = t("holder.face.step", { n: i + 1, total: actions.length });
    $("face-action").textContent = t(`holder.action.${action}`);
    $("face-action").dataset.action = action;
    await sleep(SETTLE_MS);
    for (let k = 0; k < FRAMES_PER_ACTION; k++) {
      frames.push(await grabFrame(video));
      await sleep(FRAME_GAP_MS);
    }
  }
  $("face-step").textContent = "";
  $("face-action").textContent = t("holder.face.hold");
  delete $("face-action").dataset.action;
  await sleep(400);
  return { frames, capture: await grabFrame(video) };
}

const REASONS = [
  "unexpected_action",
  "planar_motion",
  "missing_action",
  "no_face",
  "more_than_one_face",
  "static_frames",
  "not_neutral_at_start",
  "challenge_expired",
];

/** What the liveness judge saw (`details.reasons` of a liveness_failed
 * problem, e.g. "unexpected_action:turn_right"), one sentence per kind of
 * reason, the actions of a kind named together, the most telling first. */
export function reasonLines(details) {
  const actions = new Map(); // reason code -> action names (empty for a plain reason)
  for (const reason of details?.reasons ?? []) {
    const [code, action] = String(reason).split(":");
    if (!REASONS.includes(code)) continue;
    if (!actions.has(code)) actions.set(code, []);
    if (action) {
      const name = t(`holder.action_name.${action}`);
      actions.get(code).push(name.startsWith("holder.") ? action : name);
    }
  }
  const separator = lang() === "en" ? ", " : "、";
  return REASONS.filter((code) => actions.has(code)).map((code) =>
    t(`holder.reason.${code}`, { action: actions.get(code).join(separator) }),
  );
}

/** The failure as shown: the server's message, then what the judge saw. */
function failureText(err) {
  if (typeof err === "string") return err;
  return [errorText(err), ...reasonLines(err?.details)].join("\n");
}

/** The multipart answer: challenge_nonce, frames (in order) and capture. */
export function answerForm(nonce, frames, capture, fields = {}) {
  const form = new FormData();
  form.append("challenge_nonce", nonce);
  for (const [name, value] of Object.entries(fields)) {
    if (value instanceof Blob) form.append(name, value, `${name}.jpg`);
    else if (value != null && value !== "") form.append(name, value);
  }
  frames.forEach((frame, i) => form.append("frames", frame, `frame${String(i).padStart(2, "0")}.jpg`));
  form.append("capture", capture, "capture.jpg");
  return form;
}

/** Run the check for `purpose`; `submit(nonce, frames, capture)` sends the answer.
 * Resolves with submit's result; rejects with "cancelled". */
export function faceCheck(purpose, submit) {
  const video = $("face-video");
  const start = $("face-start");
  const error = $("face-error");
  return new Promise((resolve, reject) => {
    let busy = false;
    const fail = (err) => {
      showError(error, failureText(err));
      start.textContent = t("holder.face.retry");
      start.hidden = false;
      busy = false;
    };
    const attempt = async () => {
      if (busy) return;
      busy = true;
      showError(error, null);
      start.hidden = true;
      try {
        await (camera = camera.catch(() => startCamera(video, "user")));
      } catch (err) {
        return fail(t(cameraErrorKey(err)));
      }
      try {
        const issued = await challenge(purpose);
        const { frames, capture } = await film(video, issued.actions);
        if (Date.now() > Date.parse(issued.expires_at)) return fail(t("holder.face.expired"));
        $("face-action").textContent = t("holder.face.sending");
        const result = await submit(issued.nonce, frames, capture);
        cleanup();
        resolve(result);
      } catch (err) {
        $("face-action").textContent = "";
        fail(err);
      }
    };
    const cancel = () => {
      cleanup();
      reject(new Error("cancelled"));
    };
    function cleanup() {
      stopCamera(video);
      start.removeEventListener("click", attempt);
      $("face-cancel").removeEventListener("click", cancel);
      $("face-view").hidden = true;
    }
    showError(error, null);
    start.textContent = t("holder.face.start");
    start.hidden = false;
    $("face-step").textContent = "";
    $("face-action").textContent = t("holder.face.ready");
    $("face-view").hidden = false;
    start.addEventListener("click", attempt);
    $("face-cancel").addEventListener("click", cancel);
    let camera = startCamera(video, "user");
    camera.catch((err) => showError(error, t(cameraErrorKey(err))));
  });
}
