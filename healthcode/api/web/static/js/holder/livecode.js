// Live codes, built on the phone exactly as healthcode/core/passes/passes.py
// builds them (make_presentation):
//   HCP1: + base45(zlib(CBOR [pass COSE bytes, time ms, device signature]))
// where the device signs b"HCP1" || pass id (16 bytes) || time (int64 BE ms)
// with ECDSA P-256 / SHA-256, the signature in COSE form (r||s, 64 bytes),
// which is what WebCrypto returns.

import { b45decode, b45encode } from "./base45.js";
import { concat, zlibCompress, zlibInflate } from "./bytes.js";
import { Tag, decode, encode } from "./cbor.js";

export const PASS_PREFIX = "HC1:";
export const PRESENTATION_PREFIX = "HCP1:";
export const RENEW_MS = 5000;

const CLAIM = { iss: 1, exp: 4, iat: 6, cti: 7, colour: -65537, kind: -65538, name: -65539, number: -65540 };

/** The COSE bytes and the claims the card shows, from "HC1:..." text (unverified). */
export async function readPass(text) {
  text = text.trim();
  if (!text.startsWith(PASS_PREFIX)) throw new RangeError("not a pass");
  const cose = await zlibInflate(b45decode(text.slice(PASS_PREFIX.length)));
  let item = decode(cose);
  if (item instanceof Tag) item = item.value;
  if (!Array.isArray(item) || item.length !== 4) throw new RangeError("not a COSE_Sign1");
  const claims = decode(item[2]);
  const passId = claims.get(CLAIM.cti);
  if (!(passId instanceof Uint8Array) || passId.length !== 16) throw new RangeError("bad pass id");
  return {
    cose,
    passId,
    issuer: claims.get(CLAIM.iss),
    issuedAt: Number(claims.get(CLAIM.iat)),
    expiresAt: Number(claims.get(CLAIM.exp)),
    colour: claims.get(CLAIM.colour),
    kind: claims.get(CLAIM.kind),
    maskedName: claims.get(CLAIM.name),
    maskedNumber: claims.get(CLAIM.number),
  };
}

/** What the device signs: context, pass id, time (big-endian int64 ms). */
export function deviceMessage(passId, timeMs) {
  const time = new Uint8Array(8);
  new DataView(time.buffer).setBigInt64(0, BigInt(timeMs));
  return concat(new TextEncoder().encode("HCP1"), passId, time);
}

/** A live code for `pass` (from readPass) signed with `privateKey` at `timeMs`. */
export async function present(pass, privateKey, timeMs = Date.now()) {
  timeMs = Math.floor(timeMs);
  const signature = new Uint8Array(
    await crypto.subtle.sign({ name: "ECDSA", hash: "SHA-256" }, privateKey, deviceMessage(pass.passId, timeMs)),
  );
  const body = encode([pass.cose, timeMs, signature]);
  return PRESENTATION_PREFIX + b45encode(await zlibCompress(body));
}
