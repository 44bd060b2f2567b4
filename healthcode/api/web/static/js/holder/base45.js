// Base45 (RFC 9285), as healthcode/core/passes/base45.py: text that QR codes
// store in alphanumeric mode.

export const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";

export function b45encode(bytes) {
  let out = "";
  for (let i = 0; i + 1 < bytes.length; i += 2) {
    let n = bytes[i] * 256 + bytes[i + 1];
    const c = n % 45;
    n = (n - c) / 45;
    out += ALPHABET[c] + ALPHABET[n % 45] + ALPHABET[Math.floor(n / 45)];
  }
  if (bytes.length % 2) {
    const last = bytes[bytes.length - 1];
    out += ALPHABET[last % 45] + ALPHABET[Math.floor(last / 45)];
  }
  return out;
}

export function b45decode(text) {
  const values = Array.from(text, (ch) => {
    const v = ALPHABET.indexOf(ch);
    if (v < 0) throw new RangeError("base45: bad character");
    return v;
  });
  if (values.length % 3 === 1) throw new RangeError("base45: bad length");
  const out = [];
  for (let i = 0; i < values.length; i += 3) {
    if (i + 2 < values.length) {
      const n = values[i] + values[i + 1] * 45 + values[i + 2] * 2025;
      if (n > 0xffff) throw new RangeError("base45: bad group");
      out.push(n >> 8, n & 0xff);
    } else {
      const n = values[i] + values[i + 1] * 45;
      if (n > 0xff) throw new RangeError("base45: bad group");
      out.push(n);
    }
  }
  return Uint8Array.from(out);
}
