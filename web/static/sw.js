// sw.js: lets a workshop page open on this device load again without a
// network (a tablet that reloads while the Wi-Fi is down), so the changes
// it keeps on the device can be seen, added to and sent once the network
// is back. Pages and their files are fetched from the network first;
// only when that fails, or takes over 5 s, does the copy kept from the
// last load answer.
"use strict";
var CACHE = "rapporteur-pages-v1";
var slowNetwork = 5000; // ms the network has to answer before the copy kept does
var fromCopy = {};      // the client ids of pages answered with their copy
// generation counts the times the copies were let go (forget): a network
// answer asked for before, and late, is not kept then.
var generation = 0;

// forget lets go of the pages and files kept: they were the last
// person's (signing out or in, a 401, or a page told its session ended).
function forget() {
  generation++;
  return caches.delete(CACHE);
}
self.addEventListener("message", function (e) {
  if (e.data === "forget") e.waitUntil(forget());
});

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });

// offline tells whether a request is one this worker keeps a copy of.
function offline(req, url) {
  if (req.method !== "GET" || url.origin !== self.location.origin) return false;
  if (url.pathname === "/static/live.js" || url.pathname === "/static/style.css" || url.pathname === "/static/signout.js") return true;
  return req.mode === "navigate" && /^\/events\/[^/]+\/workshops\/\d+$/.test(url.pathname);
}

self.addEventListener("fetch", function (e) {
  var req = e.request, url = new URL(req.url);
  // Signing out, or in as someone (perhaps someone else): the pages kept
  // were the last person's. (live.js also checks, on joining, that the
  // page is the signed-in person's.)
  if ((req.method === "POST" && url.pathname === "/auth/logout") ||
      (req.mode === "navigate" && (url.pathname.indexOf("/signin/") === 0 || url.pathname === "/auth/callback"))) {
    e.waitUntil(forget());
    return;
  }
  if (!offline(req, url)) return;
  var kept = function () { return caches.match(url.pathname, { cacheName: CACHE }); };
  if (req.mode !== "navigate" && e.clientId && fromCopy[e.clientId]) {
    // A page shown from its copy gets the files kept with it: the
    // network's may be of another version of the server.
    e.respondWith(kept().then(function (hit) { return hit || fetch(req); }));
    return;
  }
  // copied notes that the page being loaded is answered with its copy.
  var copied = function (hit) {
    if (hit && req.mode === "navigate" && e.resultingClientId) fromCopy[e.resultingClientId] = true;
    return hit;
  };
  var asked = generation;
  var answer = fetch(req).then(function (resp) {
    if (resp.ok && asked === generation) {
      var copy = resp.clone();
      e.waitUntil(caches.open(CACHE).then(function (c) { return c.put(url.pathname, copy); }));
    } else if (resp.status >= 500) { // a proxy's 502 while the server is down
      return kept().then(function (hit) { return copied(hit) || resp; });
    } else if (resp.status === 401) { // signed out: the copies are no one's now
      e.waitUntil(forget());
    }
    return resp;
  }, function () {
    return kept().then(function (hit) { return copied(hit) || Response.error(); });
  });
  var answered = false;
  answer.then(function () { answered = true; }, function () { answered = true; });
  // A link that takes the request and never answers (a dead access point)
  // can keep a page blank for minutes: after a few seconds the copy kept
  // answers, if there is one.
  var late = new Promise(function (resolve) { setTimeout(resolve, slowNetwork); }).then(function () {
    return kept().then(function (hit) { return (!answered && copied(hit)) || answer; });
  });
  e.respondWith(Promise.race([answer, late]));
  // The network's answer, when late, still renews the copy.
  e.waitUntil(answer.then(function () {}, function () {}));
});
