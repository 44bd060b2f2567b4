// The camera: a live preview in a <video>, and still frames as JPEG blobs.

const MAX_SIDE = 960;

/** Start the camera in `video` ("user" for the face, "environment" for a document). */
export async function startCamera(video, facing = "user") {
  if (!navigator.mediaDevices?.getUserMedia) {
    const err = new Error("no camera API");
    err.name = "NotFoundError";
    throw err;
  }
  const stream = await navigator.mediaDevices.getUserMedia({
    audio: false,
    video: { facingMode: facing, width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  video.muted = true;
  video.srcObject = stream;
  video.setAttribute("playsinline", "");
  await video.play();
  return stream;
}

export function stopCamera(video) {
  const stream = video?.srcObject;
  if (stream) for (const track of stream.getTracks()) track.stop();
  if (video) video.srcObject = null;
}

/** The current video frame as a JPEG blob (longest side at most MAX_SIDE px). */
export async function grabFrame(video, quality = 0.88) {
  for (let i = 0; i < 50 && !video.videoWidth; i++) await sleep(100); // metadata not yet in
  const w = video.videoWidth;
  const h = video.videoHeight;
  if (!w || !h) throw new Error("camera not ready");
  const scale = Math.min(1, MAX_SIDE / Math.max(w, h));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(w * scale);
  canvas.height = Math.round(h * scale);
  canvas.getContext("2d").drawImage(video, 0, 0, canvas.width, canvas.height);
  return new Promise((resolve, reject) =>
    canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error("no frame"))), "image/jpeg", quality),
  );
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
