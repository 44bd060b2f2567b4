// Holder calls: signed with the device key (device.js), answered through the
// shared problem-document handling (common.js api()).

import { api } from "../common.js";
import { authorization, deviceKeys, serialise, subjectId } from "./device.js";

/** A signed holder request; `target` is the path with its query, as sent. */
export async function holderApi(method, target, body, options = {}) {
  const [pair, subject] = await Promise.all([deviceKeys(), subjectId()]);
  if (!subject) throw new Error("not enrolled");
  const { bytes, type } = await serialise(body);
  const headers = {
    Authorization: await authorization(pair.privateKey, subject, method, target, bytes),
  };
  if (type) headers["Content-Type"] = type;
  return api(target, { ...options, method, headers, body: bytes.length ? bytes : undefined });
}

export const myStatus = () => holderApi("GET", "/me/status");
export const issuePass = () => holderApi("POST", "/me/passes");
export const myDependants = () => holderApi("GET", "/me/dependants");
const SLOW = { timeoutMs: 60000 };
export const renew = (form) => holderApi("POST", "/me/renewals", form, SLOW);
export const addDependant = (form) => holderApi("POST", "/me/dependant-enrollments", form, SLOW);
export const challenge = (purpose) => api("/enrollments/challenges", { json: { purpose } });
export const documentKinds = () => api("/documents/kinds");
export const enroll = (form) => api("/enrollments", { method: "POST", body: form, ...SLOW });
