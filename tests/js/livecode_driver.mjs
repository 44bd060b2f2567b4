// Drives the holder page's ES modules under Node (WebCrypto, CompressionStream)
// for tests/test_web_livecode.py. Prints the device's public key, reads one
// JSON request from stdin, answers with what the page would send.
import { createInterface } from "node:readline";

const dir = new URL(process.argv[2], "file://");
const device = await import(new URL("device.js", dir));
const livecode = await import(new URL("livecode.js", dir));
const bytes = await import(new URL("bytes.js", dir));

const pair = await device.generateKeyPair();
console.log(JSON.stringify({ spki: await device.publicKeySpki(pair.publicKey) }));

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  const req = JSON.parse(line);
  const pass = await livecode.readPass(req.pass);
  const body = Uint8Array.from(Buffer.from(req.body_b64, "base64"));
  const form = new FormData();
  form.append("challenge_nonce", "n0");
  form.append("capture", new Blob([Uint8Array.of(0xff, 0xd8, 0xff)], { type: "image/jpeg" }), "capture.jpg");
  const serialised = await device.serialise(form);
  const answer = {
    presentation: await livecode.present(pass, pair.privateKey, req.time_ms),
    authorization: await device.authorization(pair.privateKey, req.subject, req.method, req.target, body, req.time_ms),
    form: { type: serialised.type, b64: bytes.b64(serialised.bytes) },
    claims: {
      pass_id: bytes.hex(pass.passId),
      issuer: pass.issuer,
      colour: pass.colour,
      kind: pass.kind,
      masked_name: pass.maskedName,
      masked_number: pass.maskedNumber,
      expires_at: pass.expiresAt,
      issued_at: pass.issuedAt,
    },
  };
  console.log(JSON.stringify(answer));
  break;
}
