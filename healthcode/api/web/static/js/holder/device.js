// The device key: ECDSA P-256, generated once, private half non-extractable,
// kept in IndexedDB. Holder requests carry (healthcode/core/auth.py)
//   Authorization: HC-Device subject=<id>, ts=<unix ms>, sig=<base64url r||s>
// over "HC-DEVICE-1\n" METHOD "\n" TARGET "\n" ts "\n" hex(sha256(body)),
// TARGET being the path, plus "?" and the query string when there is one.

import { b64, b64url, hex } from "./bytes.js";
import * as store from "./store.js";

const ALG = { name: "ECDSA", namedCurve: "P-256" };
const SIGN = { name: "ECDSA", hash: "SHA-256" };
const enc = new TextEncoder();

export function generateKeyPair() {
  return crypto.subtle.generateKey(ALG, false, ["sign", "verify"]);
}

let keysOnce = null;

/** This phone's key pair, created on first use. */
export function deviceKeys() {
  // Callers at the same moment share one promise: two first calls must not
  // each create a key (only the last stored would match the enrollment).
  if (!keysOnce) {
    keysOnce = (async () => {
      let pair = await store.get("device_key");
      if (!pair) {
        pair = await generateKeyPair();
        await store.set("device_key", pair);
      }
      return pair;
    })();
    keysOnce.catch(() => {
      keysOnce = null;
    });
  }
  return keysOnce;
}

/** SubjectPublicKeyInfo DER, base64: the enrollment's `device_public_key`. */
export async function publicKeySpki(publicKey) {
  return b64(new Uint8Array(await crypto.subtle.exportKey("spki", publicKey)));
}

export const subjectId = () => store.get("subject_id");
export const setSubjectId = (id) => store.set("subject_id", id);

export function requestMessage(method, target, tsMs, bodyHash) {
  return enc.encode(["HC-DEVICE-1", method.toUpperCase(), target, String(tsMs), bodyHash].join("\n"));
}

/** The Authorization header value for one request (each is accepted once). */
export async function authorization(privateKey, subject, method, target, body, tsMs = Date.now()) {
  const bytes = body || new Uint8Array(0);
  const bodyHash = hex(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)));
  const sig = new Uint8Array(
    await crypto.subtle.sign(SIGN, privateKey, requestMessage(method, target, Math.floor(tsMs), bodyHash)),
  );
  return `HC-Device subject=${subject}, ts=${Math.floor(tsMs)}, sig=${b64url(sig)}`;
}

/** The exact bytes and content type a body will be sent as (FormData, string, object as JSON). */
export async function serialise(body) {
  if (body === undefined || body === null) return { bytes: new Uint8Array(0), type: null };
  if (body instanceof Uint8Array) return { bytes: body, type: "application/octet-stream" };
  if (typeof FormData !== "undefined" && body instanceof FormData) {
    const req = new Request("http://x/", { method: "POST", body });
    return { bytes: new Uint8Array(await req.arrayBuffer()), type: req.headers.get("content-type") };
  }
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return { bytes: enc.encode(text), type: "application/json" };
}

/** fetch() signed with the device key; `target` is the path with its query, as sent. */
export async function signedFetch(method, target, body, init = {}) {
  const [pair, subject] = await Promise.all([deviceKeys(), subjectId()]);
  if (!subject) throw new Error("not enrolled");
  const { bytes, type } = await serialise(body);
  const headers = new Headers(init.headers || {});
  if (type) headers.set("Content-Type", type);
  headers.set("Authorization", await authorization(pair.privateKey, subject, method, target, bytes));
  return fetch(target, { ...init, method, headers, body: bytes.length ? bytes : undefined });
}
