// sw.js: lets a workshop page open on this device load again without a
// network (a tablet that reloads while the Wi-Fi is down), so the changes
// it keeps on the device can be seen, added to and sent once the network
// is back. Pages are fetched from the network first; only when that
// fails, or takes over 5 s, does the copy kept from the last load answer.
// A page names its files by version (/static/live.js?v=…, the start of
// the file's SHA-256): a file of a version kept answers at once, and a
// page is kept only once the files it names are, so a page is never
// paired with a script of another version of the server.
"use strict";
var CACHE = "rapporteur-pages-v1";
var slowNetwork = 5000; // ms the network has to answer before the copy kept does
var fromCopy = {};      // the client ids of pages answered with their copy
// generation counts the times the copies were let go (forget): a network
// answer asked for before, and late, is not kept then.
var generation = 0;
var FILES = ["/static/live.js", "/static/style.css", "/static/signout.js"];
var PAGE = /^\/events\/[^/]+\/workshops\/\d+$/;

// forget lets go of the pages and files kept: they were the last
// person's (signing out or in, a 401, or a page told its session ended).
function forget() {
  generation++;
  return caches.delete(CACHE);
}

// hex writes a digest as hex digits.
function hex(buf) {
  return Array.prototype.map.call(new Uint8Array(buf), function (b) { return (b < 16 ? "0" : "") + b.toString(16); }).join("");
}

// verified answers the file key names (a path with ?v=) from resp when
// resp's content is that version, and keeps it: {resp, kept}, kept a
// promise of whether it was kept (the page gets the file even when the
// device's storage is full). Another version, or a body that cannot be
// read, gives null.
function verified(key, resp, asked) {
  var v = new URL(key, self.location.origin).searchParams.get("v") || "";
  return resp.arrayBuffer().then(function (body) {
    return crypto.subtle.digest("SHA-256", body).then(function (sum) {
      if (v.length < 16 || hex(sum).slice(0, v.length) !== v) return null;
      var init = { status: resp.status, statusText: resp.statusText, headers: resp.headers };
      var kept = caches.open(CACHE).then(function (c) {
        if (asked !== generation) return false;
        return c.put(key, new Response(body, init)).then(function () { return true; });
      }).catch(function () { return false; });
      return { resp: new Response(body, init), kept: kept };
    });
  }).catch(function () { return null; });
}

// fetchFile answers the file key names (req, if given, is the page's
// request for it) and keeps it. The copy an older worker kept under the
// file's bare path answers first when it is that version (it needs no
// network, which may be a dead link that never answers); else the network
// answers, when its content is that version (not when a server upgraded
// meanwhile sends another). Else the page gets no file rather than one of
// another version: {resp: 503, kept: false}.
function fetchFile(key, asked, req) {
  return caches.match(new URL(key, self.location.origin).pathname, { cacheName: CACHE }).then(function (hit) {
    return hit ? verified(key, hit, asked) : null;
  }, function () { return null; }).then(function (got) {
    return got || fetch(req || key).then(function (resp) {
      return resp.ok ? verified(key, resp, asked) : null;
    }, function () { return null; });
  }).then(function (got) {
    return got || { resp: new Response("Not this version of the file.", { status: 503 }), kept: Promise.resolve(false) };
  });
}

// keepPage keeps a page's copy once every versioned file it names is kept
// (each fetched unless it is): a page whose files do not come leaves the
// copy before it, with its own files, to answer offline. A page that
// names no script of ours (a proxy's error page) is not kept.
function keepPage(path, resp, asked) {
  var copy = resp.clone();
  return resp.text().then(function (html) {
    var files = [], re = /(?:src|href)="(\/static\/[^"?#]+\?v=[0-9a-f]+)"/g, m;
    while ((m = re.exec(html))) files.push(m[1].replace(/&amp;/g, "&"));
    if (!files.some(function (f) { return f.indexOf("/static/live.js?v=") === 0; })) return;
    return caches.open(CACHE).then(function (c) {
      return Promise.all(files.map(function (key) {
        return c.match(key).then(function (hit) {
          return hit || fetchFile(key, asked).then(function (got) { return got.kept; }).then(function (kept) {
            if (!kept) throw new Error(key + " is not kept");
          });
        });
      })).then(function () {
        if (asked === generation) return c.put(path, copy);
      });
    });
  }).catch(function () {});
}

self.addEventListener("message", function (e) {
  if (e.data === "forget") e.waitUntil(forget());
  // A page's first load, before this worker controlled it (live.js).
  else if (e.data && typeof e.data.keep === "string" && PAGE.test(e.data.keep)) {
    var asked = generation;
    e.waitUntil(fetch(e.data.keep, { headers: { Accept: "text/html" } }).then(function (resp) {
      if (resp.ok && !resp.redirected) return keepPage(e.data.keep, resp, asked); // not a sign-in page it was sent to
    }).catch(function () {}));
  }
});

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (e) { e.waitUntil(self.clients.claim()); });

// offline tells whether a request is one this worker keeps a copy of.
function offline(req, url) {
  if (req.method !== "GET" || url.origin !== self.location.origin) return false;
  if (FILES.indexOf(url.pathname) >= 0) return true;
  return req.mode === "navigate" && PAGE.test(url.pathname);
}

self.addEventListener("fetch", function (e) {
  var req = e.request, url = new URL(req.url);
  // Signing out, or in as someone (perhaps someone else): the pages kept
  // were the last person's. (live.js also checks, on joining, that the
  // page is the signed-in person's.) A sign-out forgets again once its
  // answer has changed the cookie: a page asked for meanwhile (another tab
  // reloading) went with the last person's cookie, and is not kept. A
  // sign-in is left to the browser: passed on by the worker, it would lose
  // what the server reads of where the link was opened (Sec-Fetch-Site);
  // the sign-in ends the last session, whose pages then tell the worker.
  if (req.method === "POST" && url.pathname === "/auth/logout") {
    e.waitUntil(forget());
    e.respondWith(fetch(req).then(function (resp) {
      return forget().then(function () { return resp; }, function () { return resp; });
    }));
    return;
  }
  if (req.mode === "navigate" && (url.pathname.indexOf("/signin/") === 0 || url.pathname === "/auth/callback")) {
    e.waitUntil(forget());
    return;
  }
  if (!offline(req, url)) return;
  var navigate = req.mode === "navigate";
  var key = navigate ? url.pathname : url.pathname + url.search;
  // (A cache that fails to answer counts as no copy: the network still does.)
  var kept = function () { return caches.match(key, { cacheName: CACHE }).catch(function () {}); };
  var asked = generation;
  if (!navigate && url.searchParams.get("v")) {
    // A file of one version is that version for good: the copy answers,
    // else the network (kept when it is that version).
    e.respondWith(kept().then(function (hit) {
      return hit || fetchFile(key, asked, req).then(function (got) {
        e.waitUntil(got.kept);
        return got.resp;
      });
    }));
    return;
  }
  if (!navigate && e.clientId && fromCopy[e.clientId]) {
    // A page shown from its copy gets the files kept with it: the
    // network's may be of another version of the server. (Pages kept
    // before files were versioned name them without one.)
    e.respondWith(kept().then(function (hit) { return hit || fetch(req); }));
    return;
  }
  // copied notes that the page being loaded is answered with its copy.
  var copied = function (hit) {
    if (hit && navigate && e.resultingClientId) fromCopy[e.resultingClientId] = true;
    return hit;
  };
  var answer = fetch(req).then(function (resp) {
    if (resp.ok && asked === generation) {
      // (A file without a version, asked for by a page an older worker
      // kept, is not kept: the network's may be of another version.)
      if (navigate) e.waitUntil(keepPage(key, resp.clone(), asked));
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
