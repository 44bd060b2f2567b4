// The holder app's service worker (served at /sw.js, scope /): the app shell
// is cached so that the page, and with it the card and its live code (kept in
// IndexedDB by the page, renewed on the phone), work offline once loaded.
// API calls always go to the network: each is signed once.

const CACHE = "hc-holder-v1";
const SHELL = [
  "/",
  "/static/css/app.css",
  "/static/css/holder.css",
  "/static/js/common.js",
  "/static/js/i18n.js",
  "/static/js/holder/app.js",
  "/static/js/holder/api.js",
  "/static/js/holder/base45.js",
  "/static/js/holder/bytes.js",
  "/static/js/holder/camera.js",
  "/static/js/holder/card.js",
  "/static/js/holder/cbor.js",
  "/static/js/holder/device.js",
  "/static/js/holder/enroll.js",
  "/static/js/holder/face.js",
  "/static/js/holder/livecode.js",
  "/static/js/holder/qr.js",
  "/static/js/holder/store.js",
  "/static/vendor/qrcode-generator.mjs",
];

self.addEventListener("install", (event) => {
  event.waitUntil(
    caches
      .open(CACHE)
      .then((cache) => cache.addAll(SHELL))
      .then(() => self.skipWaiting()),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    caches
      .keys()
      .then((keys) => Promise.all(keys.filter((k) => k !== CACHE).map((k) => caches.delete(k))))
      .then(() => self.clients.claim()),
  );
});

// Network first for the shell (fresh when online), the cache when offline.
self.addEventListener("fetch", (event) => {
  const url = new URL(event.request.url);
  if (event.request.method !== "GET" || url.origin !== self.location.origin) return;
  const shell = url.pathname === "/" || url.pathname.startsWith("/static/");
  if (!shell) return;
  event.respondWith(
    fetch(event.request)
      .then((response) => {
        if (response.ok) {
          const copy = response.clone();
          caches.open(CACHE).then((cache) => cache.put(url.pathname === "/" ? "/" : event.request, copy));
        }
        return response;
      })
      .catch(() => caches.match(url.pathname === "/" ? "/" : event.request).then((hit) => hit || Response.error())),
  );
});
