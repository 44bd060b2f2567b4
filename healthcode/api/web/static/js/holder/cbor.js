// Minimal CBOR (RFC 8949) for live codes: exactly the types a pass and a
// presentation use (integers, byte and text strings, arrays, maps, tags,
// true/false/null). Our own code; definite lengths only.

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

function head(out, major, n) {
  // n: a non-negative Number (safe integer) or BigInt.
  const big = BigInt(n);
  if (big < 24n) out.push((major << 5) | Number(big));
  else if (big < 0x100n) out.push((major << 5) | 24, Number(big));
  else if (big < 0x10000n) out.push((major << 5) | 25, Number(big >> 8n), Number(big & 0xffn));
  else if (big < 0x100000000n) {
    out.push((major << 5) | 26);
    for (let s = 24n; s >= 0n; s -= 8n) out.push(Number((big >> s) & 0xffn));
  } else {
    out.push((major << 5) | 27);
    for (let s = 56n; s >= 0n; s -= 8n) out.push(Number((big >> s) & 0xffn));
  }
}

function put(out, v) {
  if (typeof v === "number" || typeof v === "bigint") {
    if (typeof v === "number" && !Number.isSafeInteger(v)) throw new TypeError("integers only");
    const big = BigInt(v);
    if (big >= 0n) head(out, 0, big);
    else head(out, 1, -1n - big);
  } else if (v instanceof Uint8Array) {
    head(out, 2, v.length);
    for (const b of v) out.push(b);
  } else if (typeof v === "string") {
    const bytes = enc.encode(v);
    head(out, 3, bytes.length);
    for (const b of bytes) out.push(b);
  } else if (Array.isArray(v)) {
    head(out, 4, v.length);
    for (const item of v) put(out, item);
  } else if (v instanceof Map) {
    head(out, 5, v.size);
    for (const [k, item] of v) {
      put(out, k);
      put(out, item);
    }
  } else if (v === false) out.push(0xf4);
  else if (v === true) out.push(0xf5);
  else if (v === null) out.push(0xf6);
  else throw new TypeError("cannot encode " + typeof v);
}

/** Encode a value: Map for maps, Uint8Array for byte strings. */
export function encode(value) {
  const out = [];
  put(out, value);
  return Uint8Array.from(out);
}

/** A tagged item as decoded. */
export class Tag {
  constructor(tag, value) {
    this.tag = tag;
    this.value = value;
  }
}

/** Decode exactly one item; maps become Map, integers Number (BigInt past 2^53). */
export function decode(bytes) {
  let pos = 0;
  const need = (n) => {
    if (pos + n > bytes.length) throw new RangeError("cbor: truncated");
  };
  const arg = (info) => {
    if (info < 24) return info;
    const size = { 24: 1, 25: 2, 26: 4, 27: 8 }[info];
    if (!size) throw new RangeError("cbor: unsupported length");
    need(size);
    let n = 0n;
    for (let i = 0; i < size; i++) n = (n << 8n) | BigInt(bytes[pos++]);
    return n <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n) : n;
  };
  const item = (depth) => {
    if (depth > 16) throw new RangeError("cbor: too deep");
    need(1);
    const first = bytes[pos++];
    const major = first >> 5;
    const info = first & 31;
    if (major === 7) {
      if (info === 20) return false;
      if (info === 21) return true;
      if (info === 22) return null;
      throw new RangeError("cbor: unsupported simple value");
    }
    const n = arg(info);
    switch (major) {
      case 0:
        return n;
      case 1:
        return typeof n === "bigint" ? -1n - n : -1 - n;
      case 2:
      case 3: {
        const len = Number(n);
        need(len);
        const slice = bytes.slice(pos, pos + len);
        pos += len;
        return major === 2 ? slice : dec.decode(slice);
      }
      case 4: {
        const list = [];
        for (let i = 0; i < Number(n); i++) list.push(item(depth + 1));
        return list;
      }
      case 5: {
        const map = new Map();
        for (let i = 0; i < Number(n); i++) {
          const k = item(depth + 1);
          map.set(k, item(depth + 1));
        }
        return map;
      }
      default:
        return new Tag(n, item(depth + 1));
    }
  };
  const value = item(0);
  if (pos !== bytes.length) throw new RangeError("cbor: trailing bytes");
  return value;
}
