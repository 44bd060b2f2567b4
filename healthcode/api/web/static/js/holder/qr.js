// Draw a live code as a QR code on a canvas (vendored qrcode-generator,
// alphanumeric mode: base45 text fits it; level M as healthcode/core/passes/qr.py).

import qrcode from "../../vendor/qrcode-generator.mjs";

export function drawQr(canvas, text, { border = 4 } = {}) {
  const qr = qrcode(0, "M");
  qr.addData(text, "Alphanumeric");
  qr.make();
  const count = qr.getModuleCount();
  const cell = Math.max(2, Math.floor(600 / (count + 2 * border)));
  const size = (count + 2 * border) * cell;
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#fff";
  ctx.fillRect(0, 0, size, size);
  ctx.fillStyle = "#000";
  for (let r = 0; r < count; r++) {
    for (let c = 0; c < count; c++) {
      if (qr.isDark(r, c)) ctx.fillRect((c + border) * cell, (r + border) * cell, cell, cell);
    }
  }
  canvas.dataset.code = text;
}
