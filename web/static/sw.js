// sw.js: lets a workshop page open on this device load again without a
// network (a tablet that reloads while the Wi-Fi is down), so the changes
// it keeps on the device can be seen, added to and sent once the network
// is back. Pages and their two files are fetched from the network first;
// only when that fails does the copy kept from the last load answer.
"use strict";
var CACHE = "rapporteur-pages-v1";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });

// offline tells whether a request is one this worker keeps a copy of.
function offline(req, url) {
  if (req.method !== "GET" || url.origin !== self.location.origin) return false;
  if (url.pathname === "/static/live.js" || url.pathname === "/static/style.css") return true;
  return req.mode === "navigate" && /^\/events\/[^/]+\/workshops\/\d+$/.test(url.pathname);
}

self.addEventListener("fetch", function (e) {
  var req = e.request, url = new URL(req.url);
  if (req.method === "POST" && url.pathname === "/auth/logout") {
    // Signing out: the pages kept were this person's.
    e.waitUntil(caches.delete(CACHE));
    return;
  }
  if (!offline(req, url)) return;
  e.respondWith(fetch(req).then(function (resp) {
    if (resp.ok) {
      var copy = resp.clone();
      e.waitUntil(caches.open(CACHE).then(function (c) { return c.put(url.pathname, copy); }));
    }
    return resp;
  }, function () {
    return caches.match(url.pathname, { cacheName: CACHE }).then(function (hit) { return hit || Response.error(); });
  }));
});
