// live.js: the workshop page on a tablet. It follows hub/PROTOCOL.md.
// Nothing typed is lost: every change is kept in this device's storage
// until the server acknowledges it, resent by itself after a reconnect
// (with the same op id, so it is applied once), and shown as "on this
// device" until then. A change the server refuses stays on the device too,
// shown as not saved, until the person edits it again or discards it.
// A saved finding can be edited (an update based on the version shown,
// so that a change someone else made meanwhile is a conflict the person
// sees, never overwritten unseen; one made in another tab of this
// browser, which the server takes for this person's own, is shown before
// anything is sent; one the person made on another device is a conflict)
// or deleted; who else is in the room,
// and what they are editing, is shown as the server's presence says.
(function () {
  "use strict";
  var root = document.getElementById("workshop");
  if (!root) return;
  var room = root.dataset.room;
  // Per person and room: on a shared tablet, one person's unsent changes
  // are never sent under another person's session.
  var storeKey = "rapporteur:" + (root.dataset.person || "") + ":" + room;
  // client names this browser of the device in every op it sends (see
  // PROTOCOL.md): the server then takes a change this person made on
  // another device for someone else's, so that a tablet whose copy is
  // behind cannot save over what they wrote since on their laptop. Kept on
  // the device. An op kept on it is sent with the name of the page that
  // sends it, not of the one that made it: the device's ops are all this
  // browser's (an older page's named none; a page that could not keep its
  // name made one of its own). Where the storage took no name yet, the
  // page keeps trying (see keepClient, save).
  var client = opID(), clientKept = false;
  keepClient();
  var statusEl = document.getElementById("status");
  var listEl = document.getElementById("findings");
  var form = document.getElementById("new-finding");
  var formError = document.getElementById("form-error");
  var formTitle = document.getElementById("form-title");
  var submitButton = form.querySelector("button[type=submit]");
  // The page comes with it disabled: a form saved before this script runs
  // (a new script slow to come) would go off as a plain GET, its text lost.
  submitButton.disabled = false;
  var cancelButton = document.getElementById("cancel-edit");
  var presenceEl = document.getElementById("presence");
  var keySection = document.getElementById("key-section");
  var keyEl = document.getElementById("key-findings");
  var keyHint = document.getElementById("key-hint");
  var kmState = document.getElementById("km-state");
  var kmShown = document.getElementById("km-shown");
  var kmForm = document.getElementById("km-form");
  var kmError = document.getElementById("km-error");
  var kmBox = kmForm.elements.text;
  var me = root.dataset.person || "";
  // The rapporteur's controls (and organizers'): marking key findings and
  // ordering them. The server checks each such op again.
  var curate = root.dataset.curate === "1";
  // Only organizers change a released finding (it may be public).
  var release = root.dataset.release === "1";
  // The workshop is released and this person no organizer: its key
  // messages are public, and only an organizer changes them now.
  var kmLocked = root.dataset.kmLocked === "1";
  var textFields = ["title", "what_done", "results", "transferability"];
  var listFields = ["countries", "themes"];
  var fieldNames = { title: "Title", what_done: "What was done", results: "Results or evidence",
    transferability: "Could another country adopt it?", countries: "Countries", themes: "Themes" };

  var maxFrame = 64 * 1024; // the server's frame limit (bytes)
  // The server's limits of a text, in characters (hub/PROTOCOL.md). The
  // fields have no maxlength: a browser cuts a paste to it without a word.
  var maxChars = { title: 300, what_done: 20000, results: 20000, transferability: 20000, text: 20000 };
  var maxInFlight = 16;     // unacked ops on the wire (PROTOCOL.md, Resume)
  var maxDone = 1000;       // settled op ids kept for the other tabs (see merge)
  var keepSaved = 256 * 1024;       // characters of the updates this device saved lately, kept for its tabs (see savedHere)
  var keepSavedMS = 30 * 60 * 1000; // ... and for how long
  var refusedCodes = { bad_frame: 1, unknown_type: 1, too_large: 1, invalid: 1, forbidden: 1, not_found: 1, conflict: 1 };

  // Kept in localStorage: the room's seq and findings as last seen, the
  // ops not yet acknowledged (in order), and the ops the server refused.
  // The copy is kept under ":state2": one under ":state" was kept by a page
  // of the version whose update entries carried the whole finding, which
  // skips those that carry what changed, and so may lack changes before
  // its seq. It is not trusted (nor kept: the log or a snapshot has it).
  try { localStorage.removeItem(storeKey + ":state"); } catch (e) {}
  // Copies of rooms kept for other people of this device (signed in here
  // before, without signing out) are theirs, not this person's to read:
  // dropped. Their changes not yet saved stay.
  dropStates(function (k) { return k.indexOf("rapporteur:" + me + ":") === 0; });
  var state = load(":state2", { seq: 0, findings: {} });
  if (!state || typeof state.seq !== "number" || !state.findings || typeof state.findings !== "object") state = { seq: 0, findings: {} };
  if (!state.voted || typeof state.voted !== "object") state.voted = {}; // the findings this person supports, by id
  // The group's key messages ({text, version}; version -1: not known on
  // this device yet). A copy kept before the page knew them catches up
  // with a snapshot, which has them.
  if (!state.km || typeof state.km.version !== "number") { state.seq = -1; state.km = { text: "", version: -1 }; } // -1: join with a snapshot
  // The key messages being written in this tab, kept on the device as
  // typed (under the tab's own key: see keepKmDraft): {text, base (the
  // version written over), prev, after, afterText (see the box's input
  // handler)}; null when the box shows the group's.
  var kmDraft = null, kmFull = false;
  var queue = load(":queue", []);
  var failed = load(":failed", []);
  var done = load(":done", []); // op ids applied or discarded, newest last (see merge)
  // Acked ops ({op, seq}) whose entry is still on the way: shown as
  // saved. Kept on the device with the room's copy: a page loaded before
  // the entry comes (a reload, offline) shows them saved too.
  var acked = [];
  // This tab's finding updates saved lately ({op, seq, t}), kept on the
  // device a while under ":saved" (see save) for its other tabs: a tab whose link lags,
  // unnoticed, does not show them (it cannot tell whether they are of the
  // log it will come back to), but its form's save of a field one of them
  // changed is stopped (see changedMeanwhile), where the server, taking
  // both tabs for this browser, would let it save over it unseen.
  var savedHere = [];
  // Ops of the device's queue this tab settled by their entry since it
  // last saved ({op, seq}): written once among the acked ones (see save),
  // for a tab whose link lags, which sent or showed them, to show them
  // saved (it drops them from its queue as done).
  var settledHere = [];
  // A conflict's copy of a finding, by id, newer than the room's copy
  // here (its entries not come yet): what the person was shown, and so
  // what their next edit of it is based on (see startEdit).
  var newer = {}, newerAt = {}; // newerAt: when it came (Date.now())
  adoptAcked();
  var editing = null; // the saved finding in the form: {id, base (the version edited), orig (its fields as shown), title}
  var people = [];    // the room's presence list
  var here = 0;       // how many are in the room (the list may name no one)
  var presenceSent = null; // the "editing" value the room has from this connection
  // This tab's form is kept under a key of its own (two tabs would write
  // over each other's), with a sign of life beside it: the form of a tab
  // closed, or killed, with text in it is offered to the others (orphans).
  // The id is kept in sessionStorage, and as the page goes a hand-over
  // mark is put in localStorage (see handOver): a reload keeps the id,
  // and so does a page of another room opened in the tab meanwhile. A
  // duplicated tab copies sessionStorage, not the mark: a page that finds
  // an id without its mark makes its own (sharing it, one page emptying
  // its form would empty the other's, and the text would be nowhere).
  // The page of that id is then asked whether it lives (in the tab it was
  // duplicated from); if not, it ended without a word, and its form comes
  // back here (see lookAgain).
  var draftPrefix = storeKey + ":draft:", alivePrefix = storeKey + ":alive:", kmKeyPrefix = storeKey + ":km:";
  var handPrefix = "rapporteur:hand:"; // the tab's, whatever the room or person
  var tabID = null, formerTab = "";
  try { tabID = sessionStorage.getItem("rapporteur:tab"); } catch (e) {}
  if (!tabID || !takeHandOver(tabID)) { formerTab = tabID || ""; tabID = opID(); }
  keepTabID();
  // Pages of the device ask each other, by id, whether they are still
  // there: a page that does not answer within probeWait, and has not
  // shown a sign of life since it was asked, is gone. Without a channel,
  // only the sign of life tells (20 s of silence).
  var probeWait = 1000, tabsChannel = null, asked = {}, answered = {}, probeTimer = null;
  try { if (window.BroadcastChannel) tabsChannel = new BroadcastChannel("rapporteur:tabs"); } catch (e) {}
  // A page answers for its id in its own room and person only (storeKey):
  // a tab that moved on to another room has left its form in this one.
  if (tabsChannel) tabsChannel.onmessage = function (e) {
    var m = e.data || {};
    if (m.key !== storeKey) return;
    if (m.ask === tabID) tabsChannel.postMessage({ here: tabID, key: storeKey });
    else if (typeof m.here === "string") {
      answered[m.here] = Date.now();
      if (m.here === formerTab) formerTab = ""; // a tab duplicated from this one: it lives
    }
  };
  var lastBeat = 0;
  var orphans = [];   // {key, tab, draft} of tabs gone
  var sent = {};   // op ids sent on this connection and not answered yet
  var ws = null, live = false, paused = false, retry = 500, timer = null;
  // The server closes with 4003 (roles changed) or 4008 (too slow for the
  // room) to have the page resume at once. When that repeats, each
  // resume costs the server a catch-up, so the wait grows (1 s doubling
  // to 15 s) until a connection stays joined for a minute.
  var resumeWait = 0, resumeCalm = 60000;
  // signOutMark reads the mark a sign-out on this device leaves (see
  // signout.js); markSeen is the mark as it was when this page loaded or
  // last joined its room as its person: a new one since means a sign-out
  // this page did not hear of (see save).
  var signOutMark = function () {
    try { return localStorage.getItem("rapporteur:signedout") || ""; } catch (e) { return ""; }
  };
  var markSeen = signOutMark();
  // The person whose pages this device shows now, as the last page to
  // join its room found: a page of another person's left open keeps no
  // copy of its room (see save).
  var devicePerson = function () {
    try { return localStorage.getItem("rapporteur:person"); } catch (e) { return me; }
  };
  var joins = 0; // rooms joined: a probe answered after a join is stale (see probeSignIn)
  var signedOut = false, blocked = "", busy = "", trouble = "", storageFull = false, draftFull = false, lastHeard = 0;
  var foreign = false; // this page is kept for another person than the one signed in (see joined)
  var rejoining = false, internalWait = 2000;
  // A dead link (a tablet that slept, another access point) can look
  // open for minutes. When live, the page pings when it has waited 3 s
  // for an op's answer, when it is shown again, or after 15 s of quiet,
  // and gives the connection up when nothing comes for patience ms after
  // the ping. patience doubles each time (a long message on a slow link
  // is not a dead one), and is back to 8 s when a pong or an ack shows
  // the server reads this connection. While a join is answered (the
  // server reads nothing else meanwhile, and a snapshot can be long), it
  // pings after 15 s of quiet and waits joinPatience more: 25 s, doubled
  // each time a join is given up, up to 200 s (a snapshot on a slow link
  // or from a busy database can take minutes, and would otherwise be asked
  // for again for ever, the changes waiting unsent), and once one is
  // joined, twice what it took (at least 25 s): the next join over that
  // link waits as long at once. Times are performance.now()'s: the wall
  // clock can jump when a tablet wakes.
  var connectPatience = 10000; // ms a WebSocket handshake may take
  var opSentAt = 0, pingedAt = -1, patience = 8000, joinPatience = 25000; // pingedAt: -1 when no ping waits for an answer
  var joinAsked = 0; // when the join now answered was sent

  // load reads what is kept under suffix; what is not of fallback's kind
  // (a list for a list) is fallback: a damaged entry must not stop the page.
  function load(suffix, fallback) {
    try {
      var v = localStorage.getItem(storeKey + suffix), x = v ? JSON.parse(v) : fallback;
      if (Array.isArray(fallback)) return Array.isArray(x) ? x.filter(function (o) { return o !== null && o !== undefined; }) : fallback;
      return x !== null && typeof x === "object" ? x : fallback;
    } catch (e) {
      return fallback;
    }
  }
  // merge takes in what another tab of this device stored. Each tab
  // writes its whole lists, so without it two tabs would overwrite each
  // other's unsent changes; and the op ids either settled (applied, or
  // discarded by the person) are kept too, so that neither tab brings back
  // an op the other one saw saved or discarded. It reports whether the
  // device's lists lack an open op this tab holds, or still hold one this
  // tab has settled without saying so: another tab wrote them before it
  // saw this tab's, and they are to be written again.
  function merge() {
    var settled = {}, storedSettled = {};
    var storedDone = load(":done", []);
    storedDone.forEach(function (id) { storedSettled[id] = true; });
    done = done.concat(storedDone).filter(function (id) {
      return settled[id] ? false : (settled[id] = true);
    }).slice(-maxDone);
    // A vote or unvote of this tab's queue that another tab settled:
    // whether the person supports the finding is the server's to say
    // (entries do not say who voted, and a settled op may have been
    // discarded, not applied). Decided before the stored lists come in:
    // they may still hold this tab's own ops, settled here since.
    var theirs = live && queue.some(function (op) { return settled[op.op_id] && (op.kind === "vote" || op.kind === "unvote"); });
    var mine = {}, kept = {}, stored = []; // mine: in either list here; this tab knows where it belongs
    queue.concat(failed).forEach(function (op) { mine[op.op_id] = true; });
    [[":queue", queue], [":failed", failed]].forEach(function (kv) {
      load(kv[0], []).forEach(function (op) {
        kept[op.op_id] = true;
        stored.push(op);
        if (!mine[op.op_id]) { mine[op.op_id] = true; kv[1].push(op); }
      });
    });
    var open = function (op) { return !settled[op.op_id]; };
    if (theirs) fetchVotes();
    queue = queue.filter(open);
    failed = failed.filter(open).filter(function (x) { return queue.every(function (op) { return op.op_id !== x.op_id; }); });
    return queue.concat(failed).some(function (op) { return !kept[op.op_id]; }) ||
      stored.some(function (op) { return settled[op.op_id] && !storedSettled[op.op_id]; });
  }
  // save keeps the lists on the device, then the room's state. The lists
  // are what must not be lost; the state is a copy of the server's, for
  // showing the room offline: when the storage is full it goes first. It
  // reports whether the lists are kept.
  function save() {
    merge();
    // The settled ids first: a tab that reads the new lists before all are
    // written must not find an op gone from the queue but not yet settled
    // (it would write the op back, as one another tab left out).
    var lists = [[":done", done], [":queue", queue], [":failed", failed]];
    // All or nothing: a list written before another failed would bring
    // back, at the next merge, an op this page has let go of (and told
    // the person so), to be sent behind their back.
    var write = function () {
      var before = lists.map(function (kv) { return localStorage.getItem(storeKey + kv[0]); }), i = 0;
      try {
        for (; i < lists.length; i++) localStorage.setItem(storeKey + lists[i][0], JSON.stringify(lists[i][1]));
        return true;
      } catch (e) {
        for (var j = 0; j < i; j++) {
          try {
            if (before[j] === null) localStorage.removeItem(storeKey + lists[j][0]);
            else localStorage.setItem(storeKey + lists[j][0], before[j]);
          } catch (e2) {}
        }
        return false;
      }
    };
    var dropState = function () { try { [":state2", ":acked", ":saved"].forEach(function (k) { localStorage.removeItem(storeKey + k); }); } catch (e) {} };
    if (!write()) {
      if (!dropOtherStates() || !write()) {
        dropState();
        if (!write()) {
          storageFull = true;
          return false;
        }
      }
    }
    storageFull = false;
    if (!clientKept) keepClient();
    // Signed out, the room's copy is no one's to keep: a shared device
    // goes on to another person. A sign-out in any page of the device
    // (see signout.js) since this page loaded or last joined counts, and
    // so does another person's page opened since: a tab whose link is
    // down hears of them no other way.
    var shown = devicePerson(); // null: no page joined on this device since it was upgraded
    if (signedOut || signOutMark() !== markSeen || shown !== null && shown !== me) {
      dropState();
      return true;
    }
    try { localStorage.setItem(storeKey + ":state2", JSON.stringify(state)); } catch (e) { dropState(); return true; }
    // Acked ops of every tab of the device whose entry the copy lacks;
    // what is laid over the room of them, not the form's draft.
    var lean = function (a) { return { op: { op_id: a.op.op_id, kind: a.op.kind, base: a.op.base, body: a.op.body }, seq: a.seq, t: a.t }; };
    var justSettled = {};
    settledHere.forEach(function (a) { justSettled[a.op.op_id] = true; });
    var seen = {}, keep = acked.concat(settledHere, load(":acked", [])).filter(function (a) {
      return isAcked(a) && (a.seq > state.seq || justSettled[a.op.op_id]) && !seen[a.op.op_id] && (seen[a.op.op_id] = true);
    }).sort(bySeq).map(lean);
    settledHere = [];
    try {
      if (keep.length) localStorage.setItem(storeKey + ":acked", JSON.stringify(keep));
      else localStorage.removeItem(storeKey + ":acked");
    } catch (e) {}
    // The device's lately saved updates (see savedHere), the newest up to
    // keepSaved characters: a hint for the other tabs, given up first
    // when the storage is full.
    savedHere = savedHere.filter(lately);
    var had = {}, recent = [], size = 0;
    savedHere.concat(load(":saved", [])).filter(function (a) {
      return isAcked(a) && a.op.kind === "finding.update" && lately(a) && !had[a.op.op_id] && (had[a.op.op_id] = true);
    }).sort(bySeq).reverse().some(function (a) {
      var l = lean(a);
      if ((size += JSON.stringify(l).length) > keepSaved) return true;
      recent.unshift(l);
      return false;
    });
    try {
      if (recent.length) localStorage.setItem(storeKey + ":saved", JSON.stringify(recent));
      else localStorage.removeItem(storeKey + ":saved");
    } catch (e) {
      try { localStorage.removeItem(storeKey + ":saved"); } catch (e2) {}
    }
    return true;
  }
  // lately tells whether a (of savedHere) was saved within keepSavedMS.
  function lately(a) {
    var now = Date.now();
    return !!a && typeof a.t === "number" && a.t <= now && now - a.t < keepSavedMS;
  }
  // dropAbove lets go of the acked and lately saved ops, of this page and
  // of the device, whose seq is above head: the log the page just joined
  // ends below them, so they are of another (a restore). Of this log they
  // are not: an op acked before the join was committed before its head
  // was read.
  function dropAbove(head) {
    var below = function (a) { return !a || typeof a.seq !== "number" || a.seq <= head; };
    if (acked.every(below) && savedHere.every(below) && load(":acked", []).every(below) && load(":saved", []).every(below)) return;
    acked = acked.filter(below);
    savedHere = savedHere.filter(below);
    [":acked", ":saved"].forEach(function (k) {
      try {
        var left = load(k, []).filter(below);
        if (left.length) localStorage.setItem(storeKey + k, JSON.stringify(left));
        else localStorage.removeItem(storeKey + k);
      } catch (e) {}
    });
  }
  function isAcked(a) { return !!a && !!a.op && typeof a.op.op_id === "string" && typeof a.seq === "number"; }
  // bySeq orders acked ops as the log applied them: they are laid over the
  // room's state in that order, and acks may come in another (PROTOCOL.md).
  function bySeq(a, b) { return a.seq - b.seq; }
  // adoptAcked takes in the acked ops the device keeps (of this tab before
  // a reload, or of another tab) whose entry the room lacks, and those of
  // written, the list another tab just wrote (it may have written another
  // since: one it settled is kept there only once, see settledHere); it
  // reports whether there were new ones.
  function adoptAcked(written) {
    var have = {}, n = acked.length, also = [];
    acked.forEach(function (a) { have[a.op.op_id] = true; });
    try { also = written ? JSON.parse(written) : []; } catch (e) {}
    load(":acked", []).concat(Array.isArray(also) ? also : []).forEach(function (a) {
      if (isAcked(a) && a.seq > state.seq && !have[a.op.op_id]) { have[a.op.op_id] = true; acked.push(a); }
    });
    acked.sort(bySeq);
    return acked.length > n;
  }
  // dropOtherStates frees space taken by the copies of other rooms (and of
  // other people on this device): copies of the server's, fetched again
  // on their next visit. Unsent and refused changes are never dropped. It
  // reports whether it dropped any.
  function dropOtherStates() {
    return dropStates(function (k) { return k === storeKey + ":state2" || k === storeKey + ":acked"; }); // this room's ":saved" too: a hint
  }
  // dropStates drops the copies of rooms kept on this device, but those
  // keep accepts, and reports whether it dropped any.
  function dropStates(keep) {
    var keys = [];
    try {
      for (var i = 0; i < localStorage.length; i++) {
        var k = localStorage.key(i);
        if (k && k.indexOf("rapporteur:") === 0 && /:(state2?|acked|saved)$/.test(k) && !keep(k)) keys.push(k);
      }
      keys.forEach(function (k) { localStorage.removeItem(k); });
    } catch (e) {}
    return keys.length > 0;
  }
  function opID() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }
  // keepClient keeps this page's name (see client) on the device, or takes
  // the one kept there; it tells whether it could.
  function keepClient() {
    try {
      var c = localStorage.getItem("rapporteur:client");
      if (/^[0-9a-f]{32}$/.test(c || "")) client = c; // one of ours (the server refuses a bad name's every op)
      else localStorage.setItem("rapporteur:client", client);
      clientKept = true;
    } catch (e) {}
  }
  function plural(n, word) { return n + " " + word + (n === 1 ? "" : "s"); }

  function setStatus() {
    var n = queue.length, text, cls;
    var kept = plural(n, "change") + " kept on this device, not saved yet";
    if (signedOut) { text = "Signed out" + (n ? " · " + kept + "; sign in again on this device to send them" : " · sign in again on this device"); cls = "offline"; }
    else if (blocked) { text = blocked + (n ? " · " + kept : ""); cls = "offline"; }
    else if (busy && !live) { text = busy + (n ? " · " + kept : ""); cls = "offline"; }
    else if (live && n === 0) { text = failed.length ? "Live" : "Live · every change is saved"; cls = "live"; }
    else if (live) { text = "Saving " + plural(n, "change") + "…" + (trouble ? " The server has trouble (" + trouble + "); still trying." : ""); cls = "saving"; }
    else if (n > 0) { text = "Offline · " + kept + "; they will be sent when the connection is back"; cls = "offline"; }
    else { text = "Offline · reconnecting…"; cls = "offline"; }
    if (failed.length || orphans.length) {
      if (live && n === 0) text = "Live";
      text += " · " + plural(failed.length + orphans.length, "change") + " not saved: see below";
      if (cls === "live") cls = "saving";
    }
    if (!storageFull && !draftFull && !signedOut && formDirty()) text += " · the form's text is kept on this device until you save it";
    if (!storageFull && !signedOut && kmDraft && curate) text += kmLocked ? " · the key messages typed here cannot be saved: the workshop is released" :
      kmFull ? " · This device's storage is full: the key messages typed may be lost if the page closes." : " · the key messages typed are kept on this device until you save them";
    if (storageFull && live && n === 0 && !failed.length && !draftFull) {
      text += " · This device's storage is full: changes from now on are sent but not kept on it: keep the page open until they are saved.";
      cls = "offline";
    } else if (storageFull || draftFull) {
      text += " · This device's storage is full: " + (storageFull ? "changes not saved yet" : "the form's text") + " may be lost if the page closes.";
      cls = "offline";
    }
    if (statusEl.textContent !== text) statusEl.textContent = text; // a live region: say only what changed
    statusEl.className = "status " + cls;
  }

  function apply(e) {
    if (e.seq <= state.seq) return;
    var p = e.payload || {};
    switch (e.kind) {
      case "finding.create": state.findings[p.id] = p; break;
      case "finding.update":
        // What changed, laid over the copy (the rest of it, key rank and
        // support included, stays as the entries before left it). A
        // process of the older version, during an upgrade, logs the whole
        // finding instead: it takes the copy's place, with the copy's rank.
        var id = p.finding ? p.finding.id : p.id, was = state.findings[id];
        if (!was) { if (p.finding) state.findings[id] = p.finding; break; }
        var now = {};
        Object.keys(was).forEach(function (k) { now[k] = was[k]; });
        var by = p.finding || p.changes || {};
        Object.keys(by).forEach(function (k) { if (k !== "is_key" && k !== "key_position") now[k] = by[k]; });
        if (!p.finding) { now.version = p.version; now.updated_at = p.updated_at; }
        state.findings[id] = now;
        break;
      case "finding.delete": delete state.findings[p.id]; break;
      case "vote": case "unvote":
        if (state.findings[p.finding_id]) state.findings[p.finding_id].votes = p.votes; break;
      case "finding.release":
        if (state.findings[p.finding_id]) state.findings[p.finding_id].release_state = p.release_state; break;
      case "keymessages.set":
        state.km = { text: p.text || "", version: p.version || 0 };
        // Written over this device's own save: the text typed since
        // builds on it.
        if (kmDraft && kmDraft.after && kmDraft.after === e.op_id) { kmDraft.base = state.km.version; kmDraft.after = ""; keepKmDraft(); }
        break;
      case "key.mark": case "key.unmark": case "key.reorder":
        var order = p.order || [];
        Object.keys(state.findings).forEach(function (id) {
          var i = order.indexOf(Number(id));
          state.findings[id].is_key = i >= 0;
          state.findings[id].key_position = i >= 0 ? i + 1 : null;
        });
        break;
    }
    // A release or a key mark changes the finding's version too.
    var changed = (e.kind === "finding.release" || e.kind === "key.mark" || e.kind === "key.unmark") && state.findings[p.finding_id];
    if (changed && typeof p.version === "number") {
      changed.version = p.version;
      changed.updated_at = p.updated_at;
    }
    state.seq = e.seq;
    state.at = e.at; // sent in joins: the server tells this log's entry from another's
  }

  function render() {
    listEl.textContent = "";
    acked = acked.filter(function (a) { return a.seq > state.seq; });
    var keys = keyOrder();
    if (editing && live && !state.findings[editing.id]) {
      // Deleted meanwhile (known once caught up): changes typed stay in the
      // form, to be saved as new; with none, the form just closes.
      if (formDirty()) {
        editing = null;
        setFormMode();
        formError.textContent = "The finding you were editing was deleted meanwhile. Your text is still here: Save finding records it as a new finding.";
        saveDraft();
        sendPresence();
      } else {
        stopEdit();
        formError.textContent = "The finding you were editing was deleted.";
      }
    }
    var items = Object.keys(state.findings).map(function (k) { return state.findings[k]; });
    items.sort(function (a, b) { return a.id - b.id; });
    items.forEach(function (f) {
      // This device's changes on top: acked ones (their entry is on the
      // way) as saved, the others as on this device.
      var view = f, how = "saved";
      acked.forEach(function (a) { view = overlay(view, a.op); });
      queue.forEach(function (op) {
        var v = overlay(view, op);
        if (v !== view) { view = v; how = "pending"; }
      });
      var isKey = keys.order.indexOf(f.id) >= 0;
      if (!!view.is_key !== isKey) {
        var k = {};
        Object.keys(view).forEach(function (x) { k[x] = view[x]; });
        k.is_key = isKey;
        view = k;
      }
      if (keys.pending[f.id]) how = "pending";
      if (!view.gone) listEl.appendChild(item(view, how));
    });
    acked.forEach(function (a) { if (a.op.kind === "finding.create") listEl.appendChild(item(a.op.body, "saved")); });
    queue.forEach(function (op) {
      if (op.kind === "finding.create") listEl.appendChild(item(op.body, "pending"));
      // An edit of a finding gone meanwhile: shown until the server answers.
      else if (op.kind === "finding.update" && !state.findings[op.body.id]) listEl.appendChild(item(op.draft || { title: op.title }, "pending"));
    });
    failed.forEach(function (op) { listEl.appendChild(failedItem(op)); });
    orphans.forEach(function (o) { listEl.appendChild(orphanItem(o)); });
    renderKeys(keys);
    renderKeyMessages();
    renderPresence();
    setStatus();
  }
  // keyOrder is the group's key findings, in order, as this device shows
  // them: the server's order with this device's acked and unsent key
  // marks, unmarks, reorders and deletes on top; pending names the
  // findings an unsent op marks, unmarks or moves. A reorder is laid over
  // the key findings as they are now: those it names in its order, then
  // any marked since (by someone else: the server will refuse it as a
  // conflict, and the list is then the server's again).
  function keyOrder() {
    var ids = Object.keys(state.findings).map(Number).filter(function (id) { return state.findings[id].is_key; });
    ids.sort(function (a, b) { return (state.findings[a].key_position || 0) - (state.findings[b].key_position || 0) || a - b; });
    var step = function (op) {
      var id = op.body && (op.body.finding_id || op.body.id);
      if (op.kind === "key.mark" && ids.indexOf(id) < 0 && state.findings[id]) ids.push(id);
      else if (op.kind === "key.unmark" || op.kind === "finding.delete") ids = ids.filter(function (x) { return x !== id; });
      else if (op.kind === "key.reorder") {
        var now = ids;
        ids = ((op.body && op.body.finding_ids) || []).filter(function (x) { return now.indexOf(x) >= 0; });
        now.forEach(function (x) { if (ids.indexOf(x) < 0) ids.push(x); });
      }
    };
    acked.forEach(function (a) { step(a.op); });
    var pending = {};
    queue.forEach(function (op) {
      var before = ids.slice(), id = op.body && op.body.finding_id;
      step(op);
      if (op.kind === "key.mark" || op.kind === "key.unmark") pending[id] = true;
      else if (op.kind === "finding.update" && op.body) pending[op.body.id] = true; // its title, as shown, not saved yet
      else if (op.kind === "key.reorder") ids.forEach(function (x, i) { if (before[i] !== x) pending[x] = true; });
    });
    return { order: ids, pending: pending };
  }
  // renderKeys lists the key findings in their order, with the
  // rapporteur's buttons to move them.
  function renderKeys(keys) {
    keyEl.textContent = "";
    keySection.hidden = !curate && keys.order.length === 0;
    keyHint.hidden = !curate;
    keys.order.forEach(function (id, i) {
      var f = view(id);
      if (!f) return;
      var li = document.createElement("li");
      li.className = "finding key " + (keys.pending[id] ? "pending" : "saved");
      li.dataset.id = id;
      var title = f.title || "(untitled)";
      li.appendChild(document.createElement("h3")).textContent = title;
      if (curate) { // a state line means something only to whoever changes the list
        var st = li.appendChild(document.createElement("p"));
        st.className = "state";
        st.textContent = keys.pending[id] ? "On this device · not saved yet" : "Saved";
        if (i > 0) named(li.appendChild(button("Move up", "up", function () { moveKey(keys.order, i, -1); })), title);
        if (i < keys.order.length - 1) named(li.appendChild(button("Move down", "down", function () { moveKey(keys.order, i, 1); })), title);
      }
      keyEl.appendChild(li);
    });
  }
  // kmPending is this device's key messages save not yet acked (unsent or
  // in flight), or null.
  function kmPending() {
    var ops = queue.filter(function (op) { return op.kind === "keymessages.set"; });
    return ops.length ? ops[ops.length - 1] : null;
  }
  // kmAcked is this device's key messages save acked with its entry still
  // on the way, or null: saved, as the version after its base.
  function kmAcked() {
    var ops = acked.filter(function (a) { return a.op.kind === "keymessages.set"; });
    return ops.length ? ops[ops.length - 1].op : null;
  }
  // renderKeyMessages shows the group's key messages (this device's save
  // on top), and fills the box with them unless text is being written in
  // it.
  function renderKeyMessages() {
    var unsent = kmPending(), mine = unsent || kmAcked();
    if (kmDraft && kmDraft.after && !unsent) {
      // The save this text was written after is no longer on its way.
      // Refused: the text is based on what that save was, so saving it is
      // refused too, with both texts shown. Saved, as learnt from another
      // tab or a snapshot (an ack or its entry set the base: see handle
      // and apply): once its text is the group's, the text builds on it.
      var after = kmDraft.after;
      if (failed.some(function (op) { return op.op_id === after; })) {
        kmDraft.base = kmDraft.prev;
        kmDraft.after = "";
        keepKmDraft();
      } else if (state.km.version >= 0 && state.km.text === kmDraft.afterText) {
        kmDraft.base = state.km.version;
        kmDraft.after = "";
        keepKmDraft();
      }
    }
    var text = mine ? mine.body.text : state.km.text;
    kmShown.textContent = state.km.version < 0 && !mine ? "Not known on this device yet." : text || (curate ? "None yet: write them below." : "None yet.");
    kmShown.className = "km-shown" + (unsent ? " pending" : "");
    if (keySection.hidden && text) keySection.hidden = false;
    kmForm.hidden = !curate;
    if (!curate) return;
    kmBox.readOnly = kmLocked; // its text can still be read and copied
    kmForm.querySelector("button[type=submit]").disabled = kmLocked;
    // Text typed before the release can no longer be saved here: it can
    // be copied (to an organizer), then let go of.
    var drop = document.getElementById("km-discard");
    if (!drop && kmLocked && kmDraft) {
      drop = kmForm.appendChild(button("Discard the text written here", "discard", function () {
        if (!kmDraft || !window.confirm("Discard the key messages written here? They were not saved, and only an organizer can change the key messages now.")) return;
        kmDraft = null;
        keepKmDraft();
        kmBox.value = "";
        render();
      }));
      drop.id = "km-discard";
    }
    if (drop) drop.hidden = !(kmLocked && kmDraft);
    var refused = failed.some(function (op) { return op.kind === "keymessages.set"; });
    kmState.textContent = kmLocked ? "Released: only an organizer can change the key messages now" + (kmDraft ? " · the text written here is not saved" : "") :
      unsent ? "On this device · not saved yet" : kmDraft ? "Written here · not saved: Save key messages keeps them" :
      refused ? "Your last save was not saved: see below" : mine || state.km.version > 0 ? "Saved" : "";
    if (!kmDraft && (mine || state.km.version >= 0) && kmBox.value !== text) kmBox.value = text; // nothing typed: the box shows the group's
  }
  // keepKmDraft keeps what is typed in the key messages' box on the
  // device, under this tab's key (two tabs do not write over each other's
  // text; a tab gone leaves its text to the next page: see adoptKmDraft),
  // and reports whether it is kept.
  function keepKmDraft() {
    var key = kmKeyPrefix + tabID;
    var put = function () {
      if (kmDraft) localStorage.setItem(key, JSON.stringify(kmDraft));
      else localStorage.removeItem(key);
    };
    try {
      put();
    } catch (e) {
      try {
        if (!dropOtherStates()) throw e;
        put();
      } catch (e2) {
        kmFull = true;
        return false;
      }
    }
    kmFull = false;
    return true;
  }
  // adoptKmDraft takes in the key messages typed in a tab gone (closed, or
  // killed, with text in its box), when this tab has none.
  function adoptKmDraft() {
    try {
      for (var i = 0; i < localStorage.length && !kmDraft; i++) {
        var key = localStorage.key(i);
        if (!key || key.indexOf(kmKeyPrefix) !== 0 || key === kmKeyPrefix + tabID) continue;
        var tab = key.slice(kmKeyPrefix.length);
        if (!gone(tab, true)) continue; // alive, or not known yet
        var d = JSON.parse(localStorage.getItem(key));
        if (d && typeof d.text === "string") {
          kmDraft = d;
          if (keepKmDraft()) localStorage.removeItem(key);
        }
      }
    } catch (e) {}
  }
  // named gives a button of a finding's an accessible name with its title:
  // a screen reader lists many "Move up" buttons otherwise.
  function named(b, title) {
    b.setAttribute("aria-label", b.textContent + ": " + title);
    return b;
  }
  // moveKey sends the key findings' order with the one at i moved by one
  // place. The list is drawn again at once, so a second tap of a double
  // tap would land on another finding's button: it is ignored.
  var movedAt = 0;
  function moveKey(order, i, by) {
    var now = Date.now();
    if (now - movedAt < 400) return;
    movedAt = now;
    var ids = order.slice(), t = ids[i];
    ids[i] = ids[i + by];
    ids[i + by] = t;
    // from: the order moved, so that a move made over someone else's
    // new order is a conflict, not a silent overwrite.
    enqueue({ kind: "key.reorder", body: { finding_ids: ids, from: order.slice() } });
  }
  // overlay returns finding f as op (an update or delete of it) leaves it,
  // or f itself when op is about something else.
  function overlay(f, op) {
    if (!op.body || op.body.id !== f.id || (op.kind !== "finding.update" && op.kind !== "finding.delete")) return f;
    var v = {};
    Object.keys(f).forEach(function (k) { v[k] = f[k]; });
    if (op.kind === "finding.delete") v.gone = true;
    else Object.keys(op.body.fields || {}).forEach(function (k) { v[k] = op.body.fields[k]; });
    return v;
  }
  // view is finding id as this device shows it: the server's copy with
  // this device's acked and unsent changes on top; null when there is none.
  function view(id) {
    var f = state.findings[id];
    if (!f) return null;
    acked.forEach(function (a) { f = overlay(f, a.op); });
    queue.forEach(function (op) { f = overlay(f, op); });
    return f.gone ? null : f;
  }
  // renderPresence lists who else is in the room.
  // Someone the room names no one to (a report author) is told how many.
  function renderPresence() {
    var others = people.filter(function (p) { return p.id !== me; });
    presenceEl.textContent = others.length ? "Also here: " + others.map(function (p) { return p.name; }).join(", ") :
      here === 2 ? "1 other person here" : here > 2 ? (here - 1) + " others here" : "";
  }

  function item(f, how) {
    var li = document.createElement("li");
    li.className = "finding " + how;
    if (f.id && how !== "failed") li.dataset.id = f.id;
    var h = document.createElement("h3");
    h.textContent = f.title || "(untitled)";
    li.appendChild(h);
    if (f.what_done) { var p = document.createElement("p"); p.textContent = f.what_done; li.appendChild(p); }
    var meta = document.createElement("p");
    meta.className = "meta";
    meta.textContent = [].concat(f.countries || [], f.themes || []).join(" · ");
    li.appendChild(meta);
    var st = document.createElement("p");
    st.className = "state";
    var mine = f.id && how !== "failed" && supports(f.id);
    var unsent = f.id && how !== "failed" && !!mine !== !!state.voted[f.id]; // a vote or unvote waits on this device
    st.textContent = how === "pending" ? "On this device · not saved yet" : "Saved" + (f.is_key ? " · key finding" : "") + (f.votes ? " · " + f.votes + " support" : "") +
      (unsent ? " · " + (mine ? "your support" : "your support taken back") + ": on this device, not saved yet" : mine ? " · you support it" : "");
    li.appendChild(st);
    if (f.id && state.findings[f.id] && how !== "failed") {
      var by = people.filter(function (p) { return p.id !== me && p.editing === "f-" + f.id; }).map(function (p) { return p.name; });
      if (by.length) {
        var ed = document.createElement("p");
        ed.className = "editing";
        ed.textContent = by.join(", ") + (by.length === 1 ? " is" : " are") + " editing this";
        li.appendChild(ed);
      }
      // toggle sends kind for the finding. The button changes in place at
      // once: a double tap is one tap (guard names the button's pair). A
      // key mark or unmark names the version seen (see seenVersion).
      var toggle = function (kind, guard) {
        return function () {
          var now = Date.now();
          if (now - (toggled[guard + f.id] || 0) < 800) return;
          toggled[guard + f.id] = now;
          enqueue({ kind: kind, base: guard === "key" ? seenVersion(f.id) : 0, body: { finding_id: f.id }, title: f.title || "" });
        };
      };
      li.appendChild(mine ? button("Take back support", "unvote", toggle("unvote", "")) : button("Support", "vote", toggle("vote", "")));
      if (curate) {
        named(li.appendChild(f.is_key ? button("Unmark key", "unmark-key", toggle("key.unmark", "key")) :
          button("Mark as key", "mark-key", toggle("key.mark", "key"))), f.title || "(untitled)");
      }
      var locked = f.release_state === "released" && !release;
      if (!locked) li.appendChild(button("Edit", "edit", function () { startEdit(f.id, null); }));
      if (!locked && (curate || (!f.is_key && f.release_state !== "shared"))) li.appendChild(button("Delete", "delete", function () {
        var inForm = editing && editing.id === f.id, mine = inForm && changedFields(formBody()) !== null;
        var drop = mine ? " Your changes in the form go too." : "";
        // The question shows all the finding holds, as the room's entries
        // left it here: the delete names that version, so a change someone
        // else makes after it is not deleted unseen (a conflict instead).
        var seen = state.findings[f.id], base = seenVersion(f.id);
        if (!window.confirm("Delete \u201c" + ((seen || f).title || "") + "\u201d for the whole group?" + drop + contentOf(seen))) return;
        // The form's changes go with the delete, kept with it as the form
        // had them (its base too) should the delete be refused.
        var op = { kind: "finding.delete", base: base, body: { id: f.id }, title: f.title || "" };
        if (mine) { op.edit = editing; op.draft = formBody(); }
        if (enqueue(op) && inForm) stopEdit();
      }));
    }
    return li;
  }

  // failedItem shows an op the server refused, with its reason; the text
  // stays until the person takes it back into the form or discards it.
  function failedItem(op) {
    var li, now = op.body && op.body.id && state.findings[op.body.id];
    if (op.kind === "finding.create") {
      li = item(op.body, "failed");
    } else if (op.kind === "finding.update") {
      // The person's text, over the finding as it is now, or whole if the
      // finding is gone.
      li = item(now ? overlay(now, op) : (op.draft || { title: op.title }), "failed");
    } else {
      li = document.createElement("li");
      li.className = "finding failed";
      var h = document.createElement("h3");
      h.textContent = op.kind === "vote" ? "Support for a finding" : op.kind === "unvote" ? "Support taken back" :
        op.kind === "finding.delete" ? "Deleting \u201c" + (op.title || "a finding") + "\u201d" :
        op.kind === "key.mark" ? "Marking \u201c" + (op.title || "a finding") + "\u201d as key" :
        op.kind === "key.unmark" ? "Taking \u201c" + (op.title || "a finding") + "\u201d out of the key findings" :
        op.kind === "key.reorder" ? "A new order of the key findings" :
        op.kind === "keymessages.set" ? "Key messages" : op.kind;
      li.appendChild(h);
      li.appendChild(document.createElement("p")).className = "state";
    }
    li.dataset.op = op.op_id;
    li.querySelector(".state").textContent = "Not saved: " + op.error;
    if (op.kind === "finding.update" && now && op.current && op.conflict) {
      // Both values of each field in conflict, so that nothing is decided
      // unseen: what is saved now (the room's copy, when newer than the
      // one the refusal carried), and what this person wrote.
      var cur = now.version >= (op.current.version || 0) ? now : op.current;
      op.conflict.forEach(function (k) {
        var c = document.createElement("div");
        c.className = "conflict";
        c.appendChild(document.createElement("strong")).textContent = fieldNames[k] + " was changed meanwhile" +
          ((op.yours ? op.yours.indexOf(k) >= 0 : /^You /.test(op.error)) ? ", by you on another device or browser." : " by someone else.");
        c.appendChild(document.createElement("p")).textContent = "Now: " + shown(cur[k]);
        c.appendChild(document.createElement("p")).textContent = "Yours (not saved): " + shown(op.body.fields[k]);
        li.appendChild(c);
      });
    }
    if (op.kind === "keymessages.set") {
      // Both texts: what is saved now, and what this person wrote.
      var curKm = op.current && op.current.version > state.km.version ? op.current : state.km;
      var c = li.appendChild(document.createElement("div"));
      c.className = "conflict";
      c.appendChild(document.createElement("p")).textContent = "Now: " + (curKm.version < 0 ? "(not known on this device yet)" : curKm.text || "(empty)");
      c.appendChild(document.createElement("p")).textContent = "Yours (not saved): " + (op.body.text || "(empty)");
      if (curate && !kmLocked && !signedOut) {
        li.appendChild(button("Edit again", "edit", function () {
          if (kmDraft && kmDraft.text !== op.body.text && !window.confirm("Replace the key messages typed in the box with these? The box's text is not saved.")) return;
          // Written over the version now saved: saving keeps this text,
          // knowing what it replaces.
          var was = kmDraft;
          kmDraft = { text: op.body.text, base: curKm.version, prev: curKm.version, after: "", afterText: "" };
          if (!keepKmDraft()) { kmDraft = was; kmError.textContent = "This device's storage is full: free some space, then try again."; return; }
          kmBox.value = op.body.text;
          forget(op);
          kmBox.focus();
        }));
      }
    }
    // The op stays kept until its text is back in the form, where the
    // draft keeps it (see saveDraft).
    if (signedOut) {
      // The room is not known while signed out: an edit could not be told
      // from a new finding. Back once signed in again.
    } else if (op.kind === "finding.create") {
      li.appendChild(button("Edit again", "edit", function () { if (intoForm(op.body, null)) forget(op); }));
    } else if (op.kind === "finding.update" && now) {
      // Based on the finding as it is now: what someone else changed is
      // on screen, and saving again keeps what the form then says.
      li.appendChild(button("Edit again", "edit", function () { if (startEdit(now.id, op.body.fields, op.current, op.conflict, op.conflictAt)) forget(op); }));
    } else if (op.kind === "finding.update" && op.draft) {
      li.appendChild(button("Save as new finding", "edit", function () { if (intoForm(op.draft, null)) forget(op); }));
    } else if (op.kind === "finding.delete" && op.edit && op.draft) {
      // The form's changes, set aside by the delete, go back to the form
      // as it was (its base too, so that saving them is judged against
      // what the person had seen); or, the finding gone, into a new one.
      li.appendChild(now ? button("Edit again", "edit", function () { if (intoForm(op.draft, op.edit)) forget(op); }) :
        button("Save as new finding", "edit", function () { if (intoForm(op.draft, null)) forget(op); }));
    }
    var title = li.querySelector("h3").textContent;
    var ask = op.kind === "finding.create" ? "Discard \u201c" + title + "\u201d? It was not saved." :
      op.kind === "finding.update" || (op.kind === "finding.delete" && op.draft) ? "Discard your changes to \u201c" + (op.title || title) + "\u201d? They were not saved." :
      op.kind === "keymessages.set" ? "Discard the key messages you wrote? They were not saved." : "";
    li.appendChild(button("Discard", "discard", function () {
      if (!ask || window.confirm(ask)) forget(op);
    }));
    return li;
  }
  // orphanItem offers the form of a tab gone, with its text. It is taken
  // only if still there: another tab may have taken it first.
  function orphanItem(o) {
    var d = o.draft, li = item(d.body, "failed");
    li.dataset.orphan = o.tab;
    li.querySelector(".state").textContent = "Not saved: typed in another tab or window, closed or asleep" + (d.editing ? " (changes to \u201c" + d.editing.title + "\u201d)" : "");
    if (!signedOut) li.appendChild(button("Edit again", "edit", function () {
      var now = freshOrphan(o);
      if (!now) return;
      var edit = now.editing && state.findings[now.editing.id] ? now.editing : null;
      if (intoForm(now.body, edit)) dropOrphan(o);
    }));
    li.appendChild(button("Discard", "discard", function () {
      var now = freshOrphan(o);
      if (now && window.confirm("Discard \u201c" + (now.body.title || "(untitled)") + "\u201d? It was not saved.")) dropOrphan(o);
    }));
    return li;
  }
  // freshOrphan reads o's form as it is now; null, and o goes from the
  // list, when another tab took it or its own tab woke up meanwhile.
  function freshOrphan(o) {
    var d = null;
    try {
      var v = localStorage.getItem(o.key);
      if (v !== null && gone(o.tab)) d = JSON.parse(v);
    } catch (e) {}
    if (!d || !d.body) {
      orphans = orphans.filter(function (x) { return x.key !== o.key; });
      render();
      return null;
    }
    return d;
  }
  function dropOrphan(o) {
    try { localStorage.removeItem(o.key); localStorage.removeItem(alivePrefix + o.tab); } catch (e) {}
    orphans = orphans.filter(function (x) { return x.key !== o.key; });
    render();
  }
  // findOrphans lists the forms of other tabs not heard from for 20 s, and
  // clears signs of life an hour old that keep no form. It reports whether
  // the list changed.
  function findOrphans() {
    var found = [], now = Date.now(), keys = [];
    try {
      for (var i = 0; i < localStorage.length; i++) keys.push(localStorage.key(i));
    } catch (e) { return false; }
    keys.forEach(function (key) {
      try {
        if (key && key.indexOf(alivePrefix) === 0 && now - Number(localStorage.getItem(key)) > 3600000 &&
            localStorage.getItem(draftPrefix + key.slice(alivePrefix.length)) === null) {
          localStorage.removeItem(key);
        }
        // The mark of a tab closed on another page (a day on, a tab
        // restored makes a new id: its form is offered as a tab gone's).
        if (key && key.indexOf(handPrefix) === 0 && now - Number(localStorage.getItem(key)) > 86400000) localStorage.removeItem(key);
        if (!key || key.indexOf(draftPrefix) !== 0) return;
        var tab = key.slice(draftPrefix.length);
        if (tab === tabID || !gone(tab)) return;
        var d = JSON.parse(localStorage.getItem(key));
        if (d && d.body && untouched(d)) { // nothing typed: no one's to keep
          localStorage.removeItem(key);
          localStorage.removeItem(alivePrefix + tab);
        } else if (d && d.body) {
          found.push({ key: key, tab: tab, draft: d });
        }
      } catch (e) {}
    });
    var before = orphans.map(function (o) { return o.key; }).join(" ");
    orphans = found;
    return found.map(function (o) { return o.key; }).join(" ") !== before;
  }
  // gone tells whether the page of another tab, with id tab, has gone: it
  // was silent for 20 s, or is this tab's page before (formerTab, ended
  // without a word), or, unless sure, left (a hand-over mark no page took
  // for a second: it may yet come back from the page cache); and, where
  // pages can be asked, it did not answer. A page not asked lately is
  // asked, and the forms are looked at again once it could answer. (A
  // page in a hidden tab beats rarely, as timers are slowed there, but
  // answers.) What is only offered to the person needs no more; what is
  // taken in by itself (key messages) needs sure.
  function gone(tab, sure) {
    var now = Date.now(), beat = 0, mark = 0;
    try {
      beat = Number(localStorage.getItem(alivePrefix + tab) || 0);
      mark = Number(localStorage.getItem(handPrefix + tab) || 0);
    } catch (e) { return false; }
    var silent = now - beat >= 20000;
    var marked = !sure && mark > 0 && mark >= beat && now - mark >= 1000;
    // Without a channel, this tab's page before cannot be told from a
    // duplicate of it that lives: only silence tells.
    if (!tabsChannel) return silent || marked;
    if (!silent && !marked && tab !== formerTab) return false;
    var at = asked[tab] || 0;
    // No word since asked: gone once it could have answered; what is
    // taken in by itself waits longer, for a page busy for a while.
    if (at && beat < at && !(answered[tab] >= at)) return now - at >= (sure ? 3 : 1) * probeWait;
    if (!at || now - at >= 5000) { // asked again now and then: a page may go at any time
      asked[tab] = now;
      try { tabsChannel.postMessage({ ask: tab, key: storeKey }); } catch (e) { return false; }
      if (probeTimer === null) probeTimer = setTimeout(function () { probeTimer = null; lookAgain(); }, probeWait + 50);
    }
    return false;
  }
  // lookAgain looks for the forms of tabs gone once the pages asked could
  // answer; the form of this tab's page before (ended without a word)
  // comes back into the form, when that is empty.
  function lookAgain() {
    var changed = findOrphans(), adopted = false;
    if (!kmDraft) {
      adoptKmDraft();
      if (kmDraft) { kmBox.value = kmDraft.text; adopted = true; }
    }
    var mine = orphans.filter(function (o) { return o.tab === formerTab; })[0];
    if (mine && !editing && !formDirty()) {
      if (!gone(mine.tab, true)) {
        setTimeout(lookAgain, probeWait); // not sure yet: it may be busy
      } else {
        var now = freshOrphan(mine);
        // An edit stays one, as after a reload (see restoreDraft): the
        // room may not be known yet; a finding deleted meanwhile is
        // said once it is (see render).
        if (now && intoForm(now.body, now.editing || null)) dropOrphan(mine);
        changed = true;
      }
    }
    if (changed || adopted) render();
  }
  // keepTabID keeps this page's id in its tab's sessionStorage (see tabID).
  function keepTabID() {
    try { sessionStorage.setItem("rapporteur:tab", tabID); } catch (e) {}
  }
  // untouched tells whether a kept form is an edit form opened and left
  // unchanged: nothing was typed in it. A form it cannot read was typed in.
  function untouched(d) {
    try { return !!(d.editing && d.editing.orig && !changesOf(d.body, d.editing.orig)); } catch (e) { return false; }
  }
  // handOver hands this page's id on to the next page of its tab (see
  // tabID), before anything else is kept as the page goes: without the
  // mark, the next page would make a new id and find this page's form
  // only as a tab gone's. A full storage gives up copies of rooms for it.
  function handOver() {
    keepTabID();
    var put = function () { localStorage.setItem(handPrefix + tabID, String(Date.now())); };
    try { put(); } catch (e) {
      try { dropOtherStates(); put(); } catch (e2) {
        try { localStorage.removeItem(storeKey + ":state2"); put(); } catch (e3) {}
      }
    }
  }
  // takeHandOver takes the mark of id's hand-over (see tabID) and reports
  // whether it was there. Without storage a page cannot tell: it takes it.
  function takeHandOver(id) {
    try {
      var there = localStorage.getItem(handPrefix + id) !== null;
      localStorage.removeItem(handPrefix + id);
      return there;
    } catch (e) { return true; }
  }
  function button(text, cls, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = cls;
    b.textContent = text;
    b.addEventListener("click", onClick);
    return b;
  }
  function forget(op) {
    done.push(op.op_id);
    failed = failed.filter(function (x) { return x.op_id !== op.op_id; });
    save();
    render();
  }
  // fillForm puts body in the form. A term the form has no box for (taken
  // out of the taxonomy, or set by another client) gets one, checked: an
  // edit keeps it, and the person sees it and can take it out.
  function fillForm(body) {
    removeExtraBoxes();
    textFields.forEach(function (k) { form.elements[k].value = body[k] || ""; });
    var boxed = {};
    Array.prototype.forEach.call(form.querySelectorAll("input[type=checkbox]"), function (c) {
      c.checked = (body[c.name] || []).indexOf(c.value) >= 0;
      boxed[c.name + "\n" + c.value] = true;
    });
    listFields.forEach(function (k) {
      var first = form.querySelector("input[type=checkbox][name=" + k + "]");
      if (!first) return;
      (body[k] || []).forEach(function (v) {
        if (boxed[k + "\n" + v]) return;
        boxed[k + "\n" + v] = true;
        var label = document.createElement("label"), c = document.createElement("input");
        label.className = "chip extra";
        c.type = "checkbox";
        c.name = k;
        c.value = v;
        c.checked = true;
        label.appendChild(c);
        label.appendChild(document.createTextNode(" " + v + " (not in the list)"));
        first.closest("fieldset").appendChild(label);
      });
    });
  }
  function removeExtraBoxes() {
    Array.prototype.forEach.call(form.querySelectorAll("label.chip.extra"), function (l) { l.remove(); });
  }
  function clearForm() {
    form.reset();
    removeExtraBoxes();
  }
  function formBody() {
    var data = new FormData(form), body = {};
    textFields.forEach(function (k) { body[k] = data.get(k) || ""; });
    listFields.forEach(function (k) { body[k] = data.getAll(k); });
    return body;
  }
  function fieldsOf(f) {
    var o = {};
    textFields.forEach(function (k) { o[k] = f[k] || ""; });
    listFields.forEach(function (k) { o[k] = (f[k] || []).slice(); });
    return o;
  }
  // formDirty tells whether the form holds text not saved anywhere but in
  // the draft: a change to the finding edited, or anything for a new one.
  function formDirty() {
    var b = formBody();
    if (editing) return changedFields(b) !== null;
    return textFields.some(function (k) { return b[k] !== ""; }) || listFields.some(function (k) { return b[k].length > 0; });
  }
  // intoForm puts body in the form, to edit (edit: {id, base, orig, title})
  // or to create (null), after asking when that would replace unsaved
  // text. It reports whether the text is now kept on the device as the
  // form's (the caller may then let go of its own copy).
  function intoForm(body, edit) {
    if (formDirty() && !window.confirm("Replace what is in the form? It is not saved yet.")) return false;
    editing = edit;
    fillForm(body);
    setFormMode();
    formError.textContent = "";
    var kept = saveDraft();
    sendPresence();
    form.scrollIntoView();
    return kept;
  }
  // startEdit puts finding id in the form as this device shows it, with
  // changes (the fields of a refused update) on top. The base is the
  // server's version (this device's own unsent changes are no conflict),
  // or current's, a conflict's newer copy. It reports whether it did.
  // After a conflict, conflict names the fields someone else changed: the
  // form then shows their value beside each (see showTheirs).
  function startEdit(id, changes, current, conflict, at) {
    if (!view(id)) return false;
    // From this device's copy, or a conflict's newer one (its entry not
    // here yet), with this device's changes on top.
    var copy = state.findings[id], fromNewer = !!newer[id] && newer[id].version > copy.version;
    var f = fromNewer ? newer[id] : copy, base = f.version, since = fromNewer ? newerAt[id] || 0 : 0;
    acked.forEach(function (a) {
      // On a conflict's copy, the acked ops made on it. One made on an
      // older version may be in it, or saved over since: this device's
      // clock cannot tell (an ack can come late), so the form shows the
      // copy, and the check before saving stops a save over such an op
      // acked after the conflict came (see changedMeanwhile).
      if (fromNewer && (a.op.base || 0) < base) return;
      f = overlay(f, a.op);
    });
    queue.forEach(function (op) { f = overlay(f, op); });
    if (f.gone) return false;
    if (current && current.id === id && current.version >= base) { f = current; base = current.version; since = at || 0; }
    var body = fieldsOf(f), theirs = null, orig = fieldsOf(f);
    Object.keys(changes || {}).forEach(function (k) { body[k] = changes[k]; });
    (conflict || []).forEach(function (k) {
      if (!(k in orig)) return;
      theirs = theirs || {};
      theirs[k] = orig[k];
    });
    return intoForm(body, { id: id, base: base, orig: orig, title: f.title || "", theirs: theirs, at: since });
  }
  // shown is a field's value as text, for people.
  function shown(v) {
    if (Array.isArray(v)) return v.length ? v.join(", ") : "(none)";
    return v ? String(v) : "(empty)";
  }
  // showTheirs puts, under each form field in conflict, what someone else
  // saved there meanwhile, with a button to take it instead of the
  // person's own text: saving again is then a choice made in sight of both.
  function showTheirs() {
    Array.prototype.forEach.call(form.querySelectorAll(".theirs"), function (e) { e.remove(); });
    if (!editing || !editing.theirs) return;
    Object.keys(editing.theirs).forEach(function (k) {
      var field = textFields.indexOf(k) >= 0 ? form.elements[k] && form.elements[k].closest("label") :
        form.querySelector("input[type=checkbox][name=" + k + "]");
      if (field && listFields.indexOf(k) >= 0) field = field.closest("fieldset");
      if (!field) field = formError.previousElementSibling || formError; // a field the form has no box for: shown all the same
      var p = document.createElement("p");
      p.className = "theirs";
      p.dataset.field = k;
      p.textContent = "Changed meanwhile (by someone else, or in another tab or window) to: " + shown(editing.theirs[k]) + " ";
      p.appendChild(button("Use theirs", "use-theirs", function () {
        var body = formBody();
        body[k] = editing.theirs[k];
        delete editing.theirs[k];
        fillForm(body);
        showTheirs();
        saveDraft();
      }));
      field.insertAdjacentElement("afterend", p);
    });
  }
  function stopEdit() {
    editing = null;
    clearForm();
    setFormMode();
    saveDraft();
    sendPresence();
  }
  function setFormMode() {
    formTitle.textContent = editing ? "Edit \u201c" + editing.title + "\u201d" : "Record a best practice";
    submitButton.textContent = editing ? "Save changes" : "Save finding";
    cancelButton.hidden = !editing;
    showTheirs();
  }
  // The form's text is kept on the device as it is typed: a reload, a
  // crash or a tab the system closed does not lose it. It reports whether
  // it could.
  function saveDraft() {
    var empty = !editing && !formDirty();
    var text = empty ? "" : JSON.stringify({ editing: editing, body: formBody() });
    var put = function () {
      if (empty) localStorage.removeItem(draftPrefix + tabID);
      else localStorage.setItem(draftPrefix + tabID, text);
    };
    try {
      try { put(); } catch (e) {
        if (!dropOtherStates()) throw e;
        put();
      }
      if (draftFull) { draftFull = false; setStatus(); }
      return true;
    } catch (e) {
      draftFull = true;
      setStatus();
      return false;
    }
  }
  // restoreDraft puts this tab's form back after a reload. Whether a
  // finding edited still exists is known once the room is caught up (see
  // render).
  function restoreDraft() {
    var d = load(":draft:" + tabID, null);
    if (!d || !d.body) return;
    editing = d.editing || null;
    fillForm(d.body);
    setFormMode();
  }
  // beAlive is this tab's sign of life. A tab that was asleep itself (its
  // last beat long ago) does not judge the others until they could beat.
  function beAlive() {
    var now = Date.now(), slept = lastBeat && now - lastBeat > 20000;
    lastBeat = now;
    try { localStorage.setItem(alivePrefix + tabID, String(now)); } catch (e) {}
    var adopted = false;
    if (!slept && !kmDraft) { // key messages typed in a tab gone, into an empty box
      adoptKmDraft();
      if (kmDraft) { kmBox.value = kmDraft.text; adopted = true; }
    }
    if ((!slept && findOrphans()) || adopted) render();
  }
  // sendPresence tells the room which finding this page edits, when that changed.
  function sendPresence() {
    var value = editing ? "f-" + editing.id : "";
    if (value === presenceSent || !live || !ws || ws.readyState !== WebSocket.OPEN) return; // sent on joined
    presenceSent = value;
    ws.send(JSON.stringify({ type: "presence", room: room, editing: value }));
  }
  // changedFields is what the form changes of the finding being edited,
  // or null when nothing.
  function changedFields(body) { return changesOf(body, editing.orig); }
  // changesOf is what body changes of orig's fields, or null when nothing.
  function changesOf(body, orig) {
    var out = {}, n = 0;
    textFields.forEach(function (k) { if (body[k] !== orig[k]) { out[k] = body[k]; n++; } });
    listFields.forEach(function (k) {
      if (body[k].slice().sort().join("\n") !== orig[k].slice().sort().join("\n")) { out[k] = body[k]; n++; }
    });
    return n ? out : null;
  }

  // contentOf is what finding f holds, every field of it the room's
  // entries carry, for a question about it. (This device's own changes
  // not saved yet are not in it: the question is about the version the
  // op names. A contact is never carried; that there is one is.)
  var contentNames = { what_done: fieldNames.what_done, results: fieldNames.results, transferability: fieldNames.transferability,
    nordic_proposal: "Nordic proposal", countries: fieldNames.countries, themes: fieldNames.themes, ps: "The 4 Ps", forms: "Forms of exploitation",
    victim_groups: "Victim groups", actor_types: "Actor types", language: "Language", attribution: "Credit" };
  function contentOf(f) {
    if (!f) return "";
    var out = "";
    Object.keys(contentNames).forEach(function (k) {
      var v = Array.isArray(f[k]) ? f[k].join(", ") : f[k] ? String(f[k]) : "";
      if (v) out += "\n\n" + contentNames[k] + ": " + v;
    });
    if (f.contact_consent) out += "\n\nA contact is given (only organizers and report authors see it).";
    return out;
  }
  // seenVersion is the version of a finding as the room's entries left
  // it here: a delete or key change sent with it is refused as a conflict
  // if someone else changed the finding (or its key state) since, unseen.
  function seenVersion(id) {
    var f = state.findings[id];
    return f && f.version > 0 ? f.version : 0;
  }
  function frameOf(op) {
    var f = { type: "op", room: room, op_id: op.op_id, kind: op.kind, body: op.body };
    if (op.base) f.base = op.base;
    f.client = client;
    return JSON.stringify(f);
  }
  function bytes(s) { return new TextEncoder().encode(s).length; }

  // enqueue keeps op on the device, then sends it when the window allows.
  // It returns false, keeping nothing, when op is too big for one frame or
  // the device's storage is full; errEl (the finding form's by default)
  // says which.
  function enqueue(op, errEl) {
    var errorEl = errEl || formError;
    op.op_id = opID();
    var n = bytes(frameOf(op));
    if (n > maxFrame) {
      errorEl.textContent = "Too long to send: " + Math.ceil(n / 1024) + " KiB, at most " + Math.floor(maxFrame / 1024) + " KiB. Please shorten it.";
      return false;
    }
    errorEl.textContent = "";
    queue.push(op);
    if (!save()) {
      if (!live || !ws || ws.readyState !== WebSocket.OPEN) {
        // Not kept on the device, nor sent: the text stays where it is (the form).
        queue = queue.filter(function (o) { return o !== op; });
        errorEl.textContent = "This device's storage is full, so this cannot be kept until it is saved. Your text is still here; free some space (or go online) and try again.";
        render();
        return false;
      }
      // Live: sent all the same, and kept by this page alone until saved
      // (the status says so). Refused, nothing could ever be saved from a
      // device whose storage takes nothing.
      errorEl.textContent = "This device's storage is full, so this is not kept on it: it is being sent now. Keep this page open until it is saved.";
    }
    render();
    pump();
    return true;
  }

  // pump sends the queue's next ops in order, at most maxInFlight
  // unanswered; while paced (see later), one every pace ms.
  function pump() {
    if (!live || paused || !ws || ws.readyState !== WebSocket.OPEN) return;
    var inFlight = Object.keys(sent).length;
    for (var i = 0; i < queue.length && inFlight < maxInFlight; i++) {
      var op = queue[i];
      if (sent[op.op_id]) continue;
      var now = performance.now();
      if (pace && now < pacedAt + pace) {
        resumeAt(pacedAt + pace);
        return;
      }
      pacedAt = now;
      if (inFlight === 0) opSentAt = now;
      sent[op.op_id] = true;
      inFlight++;
      ws.send(frameOf(op));
    }
    if (!queue.some(function (op) { return !sent[op.op_id]; })) pace = 0; // caught up
  }
  // later sends op and every op after it again, in order, after wait ms
  // (the server refuses the ones after it until it comes again); the ops
  // before it are still in flight. The first wait of a burst of errors is
  // theirs (the errors of the ops behind it say no more), and it holds
  // over the pace, which only spaces the ops out. After a rate_limited,
  // the ops go one every pace ms (PROTOCOL.md: no faster than the rate
  // allows; resent at once, all but the first would be refused again),
  // until none waits.
  var pace = 0, pacedAt = 0;
  var waiting = false; // paused for an error's wait, not for the pace
  function later(op, wait) {
    var i = queue.indexOf(op);
    queue.slice(i < 0 ? 0 : i).forEach(function (o) { delete sent[o.op_id]; });
    if (waiting) return;
    waiting = true;
    resumeAt(Math.max(performance.now() + wait, paused ? resumeTime : 0));
  }
  // resumeAt pauses sending on this connection until at (a
  // performance.now() time), in place of the pause set before.
  var resumeTimer = null, resumeTime = 0;
  function resumeAt(at) {
    paused = true;
    resumeTime = at;
    clearTimeout(resumeTimer);
    var sock = ws;
    resumeTimer = setTimeout(function () {
      if (ws !== sock) return;
      paused = waiting = false;
      pump();
    }, Math.max(0, at - performance.now()));
  }
  // settle ends op opID: it committed.
  // Only this device's ops go into done, the list that keeps other tabs
  // from bringing them back: the entries of other devices would push them
  // out of it.
  function settle(opID) {
    delete sent[opID];
    queue.filter(function (op) { return op.op_id === opID; }).forEach(supported);
    var mine = function (op) { return op.op_id === opID; };
    if (queue.some(mine) || failed.some(mine)) done.push(opID);
    queue = queue.filter(function (op) { return op.op_id !== opID; });
    failed = failed.filter(function (op) { return op.op_id !== opID; });
  }

  // supports tells whether the person supports finding id: as the server
  // last said, with this device's unsent votes and unvotes on top.
  function supports(id) {
    var on = !!state.voted[id];
    queue.forEach(function (op) {
      if ((op.kind === "vote" || op.kind === "unvote") && op.body && op.body.finding_id === id) on = op.kind === "vote";
    });
    return on;
  }
  // supported records the person's own vote or unvote, applied.
  function supported(op) {
    if (op.kind !== "vote" && op.kind !== "unvote") return;
    if (op.kind === "vote") state.voted[op.body.finding_id] = true;
    else delete state.voted[op.body.finding_id];
    if (votesSince) votesSince.push(op);
  }
  // fetchVotes asks which findings the person supports (entries do not
  // say who voted), on every join: votes from another device show too.
  // What this page saw applied while it asked is laid over the answer.
  var votesSince = null;
  var toggled = {}; // finding id: when its Support button was last pressed
  function fetchVotes() {
    var mine = [];
    votesSince = mine;
    fetch("/api/events/" + encodeURIComponent(root.dataset.event || "") + "/workshops/" + room.split(":")[1] + "/my-votes", { cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (b) {
        if (votesSince !== mine) return; // a newer question is on its way
        votesSince = null;
        // Asked with the browser's session: the answer of another person
        // (signed in on this device meanwhile) is not this page's.
        if (!b || !Array.isArray(b.finding_ids) || b.person_id !== me) return;
        var v = {};
        b.finding_ids.forEach(function (id) { v[id] = true; });
        mine.forEach(function (op) {
          if (op.kind === "vote") v[op.body.finding_id] = true; else delete v[op.body.finding_id];
        });
        state.voted = v;
        save();
        render();
      }, function () { if (votesSince === mine) votesSince = null; });
  }

  function connect() {
    timer = null;
    if (signedOut || foreign) return;
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    var sock = new WebSocket(url);
    sock.since = performance.now();
    sock.mark = signOutMark(); // a sign-out after this is not this connection's to vouch for
    ws = sock;
    sent = {};
    paused = waiting = false; // a wait was for the old connection's rate
    pace = 0;
    sock.onopen = function () {
      sock.opened = true;
      lastHeard = performance.now();
      pingedAt = -1;
      joinAsked = lastHeard;
      sock.send(JSON.stringify({ type: "join", room: room, since: state.seq, at: state.seq > 0 && state.at || "" }));
    };
    sock.onmessage = function (m) {
      if (ws !== sock) return; // given up (see closed)
      lastHeard = performance.now();
      pingedAt = -1;
      // A message holds one frame or several, a frame a line.
      String(m.data).split("\n").forEach(handle);
      save();
      render();
      pump();
    };
    sock.onclose = function (ev) { closed(sock, ev.code); };
  }
  // abandon gives up the connection: the page says so at once and
  // reconnects (see closed).
  function abandon() {
    var sock = ws;
    closed(sock, 1006);
    sock.close();
  }
  // closed handles the end of sock: at once when the page gave it up (a
  // dead link can take a minute to report its close), else on its close.
  function closed(sock, code) {
    if (ws !== sock) return;
    live = false;
    ws = null;
    rejoining = false;
    busy = "";
    if (code === 4001) { // session ended: only a new sign-in helps
      forgetRoom();
    } else if (code === 1009) { // a frame over the limit (enqueue checks, so an old page's op)
      var over = queue.filter(function (op) { return bytes(frameOf(op)) > maxFrame; });
      if (!over.length) {
        // The server's limit is below what this page knew: the largest op
        // in flight is the one, or the page would resend it forever.
        over = queue.filter(function (op) { return sent[op.op_id]; }).sort(function (a, b) {
          return bytes(frameOf(b)) - bytes(frameOf(a));
        }).slice(0, 1);
      }
      over.forEach(function (op) { refuse(op, "too long to send (over the server's limit of one frame)"); });
      save();
    }
    render();
    if (signedOut) return;
    if (!sock.opened) probeSignIn();
    if (sock.joinedAt && performance.now() - sock.joinedAt >= resumeCalm) resumeWait = 0;
    if (code === 4009) {
      // The room's log was restored from a backup: what this page holds
      // of it is another log's, and so are the ops acked before (what
      // the restored log has of them, the snapshot has). The next join
      // takes a snapshot.
      state.seq = -1;
      dropAbove(-1);
      newer = {};
      newerAt = {};
      save();
    }
    if (code === 4003 || code === 4008 || code === 4009) { // roles changed, too slow, log restored: resume soon
      reconnect(resumeWait * (0.5 + Math.random() / 2));
      resumeWait = Math.min(Math.max(resumeWait * 2, 1000), 15000);
      return;
    }
    reconnect(retry * (0.5 + Math.random() / 2));
    retry = Math.min(retry * 2, 30000);
  }
  // forgetRoom marks the page signed out and drops its copy of the room,
  // on the screen and on the device: the drafts of a group are for its
  // members, and the next person to pick up a shared tablet is perhaps not
  // one. What was typed here and not yet saved stays, to be sent once its
  // person signs in again; a sign-in joins with a snapshot.
  function forgetRoom() {
    signedOut = true;
    // The page and files the service worker keeps were this person's too
    // (sw.js hears of a sign-out in this browser, not of one elsewhere).
    // A page the worker does not control (a hard reload) tells it too:
    // a keep it asked for may still be under way.
    try {
      if (navigator.serviceWorker && navigator.serviceWorker.controller) navigator.serviceWorker.controller.postMessage("forget");
      if (navigator.serviceWorker) {
        navigator.serviceWorker.getRegistration().then(function (r) {
          if (r && r.active) r.active.postMessage("forget");
        }).catch(function () {});
      }
      if (window.caches) caches.delete("rapporteur-pages-v1"); // sw.js's CACHE
    } catch (e) {}
    if (ws) { // told by a probe: entries still coming are not applied to the emptied room
      var sock = ws;
      ws = null;
      live = false;
      busy = "";
      rejoining = false;
      sock.close();
    }
    state = { seq: -1, findings: {}, voted: {}, km: { text: "", version: -1 } };
    save();
  }
  // probeSignIn tells a session that ended while the page was away (the
  // WebSocket upgrade then fails without a close code) from a server that
  // cannot be reached: the page itself answers 401.
  function probeSignIn() {
    var j = joins;
    fetch(location.href, { method: "HEAD", cache: "no-store" }).then(function (r) {
      if (r.status !== 401 || joins !== j) return; // joined since: a session it is
      forgetRoom();
      if (timer !== null) { clearTimeout(timer); timer = null; }
      render();
    }, function () {});
  }
  function reconnect(wait) {
    if (timer === null) timer = setTimeout(connect, wait);
  }
  // refuse moves op from the queue to the refused ones (not settled: the
  // person still has to edit or discard it).
  function refuse(op, message) {
    delete sent[op.op_id];
    queue = queue.filter(function (o) { return o.op_id !== op.op_id; });
    op.error = message;
    failed.push(op);
  }

  function handle(line) {
    var f;
    try { f = JSON.parse(line); } catch (e) { return; }
    switch (f.type) {
      case "snapshot":
        var shop = (f.state && f.state.workshop) || {};
        state = { seq: f.seq, at: f.at, findings: {}, voted: state.voted, km: { text: shop.key_messages || "", version: shop.key_messages_version || 0 } };
        if (shop.release_state) kmLocked = shop.release_state === "released" && !release;
        ((f.state && f.state.findings) || []).forEach(function (x) { state.findings[x.id] = x; });
        break;
      case "entry":
        if (f.seq > state.seq + 1) {
          // A gap (the server promises none): dropped, and joined again
          // from what is held (once; the entries after it wait for that).
          if (live && !rejoining) rejoin();
          break;
        }
        apply(f);
        // The entry proves the op committed, even if its ack is still on the way.
        if (f.op_id) {
          queue.forEach(function (op) {
            if (op.op_id !== f.op_id) return;
            settledHere.push({ op: op, seq: f.seq, t: Date.now() });
            if (op.kind === "finding.update") savedHere.push({ op: op, seq: f.seq, t: Date.now() });
          });
          settle(f.op_id);
        }
        break;
      case "joined":
        if (f.me && me && me !== "0" && f.me !== me) { notMine(); return; }
        if (f.room === room && f.seq > state.seq && !rejoining) {
          // The catch-up lacks entries the server says it sent (one was
          // dropped at a gap): join again from what is held, once.
          rejoin();
          return;
        }
        if (ws) markSeen = ws.mark; // joined as this page's person, signed in since the mark it saw
        if (f.room === room) {
          dropAbove(f.seq);
          newer = {}; // the copy has caught up with them
          newerAt = {};
        }
        joins++;
        try { localStorage.setItem("rapporteur:person", me); } catch (e) {}
        live = true;
        rejoining = false;
        blocked = "";
        busy = "";
        retry = 500;
        joinPatience = Math.min(200000, Math.max(25000, 2 * (performance.now() - joinAsked)));
        if (ws && !ws.joinedAt) ws.joinedAt = performance.now();
        sent = {};
        people = f.presence || [];
        here = f.count || 0;
        if (f.max_frame > 0) maxFrame = f.max_frame;
        presenceSent = ""; // a new member edits nothing
        sendPresence();
        fetchVotes();
        break; // onmessage pumps: everything not yet acknowledged, in order
      case "presence":
        if (f.room === room) { people = f.people || []; here = f.count || 0; }
        break;
      case "pong":
        patience = 8000;
        break;
      case "ack":
        var op = queue.filter(function (o) { return o.op_id === f.op_id; })[0];
        if (op && f.seq > state.seq) { acked.push({ op: op, seq: f.seq, t: Date.now() }); acked.sort(bySeq); }
        if (op) settledHere.push({ op: op, seq: f.seq, t: Date.now() }); // its entry may come in this same message
        if (op && op.kind === "finding.update") savedHere.push({ op: op, seq: f.seq, t: Date.now() });
        // A key messages save is applied only over the version it names:
        // text typed after it builds on the next one.
        if (op && op.kind === "keymessages.set" && kmDraft && kmDraft.after === op.op_id) { kmDraft.base = op.base + 1; kmDraft.after = ""; keepKmDraft(); }
        settle(f.op_id);
        trouble = "";
        internalWait = 2000;
        patience = 8000;
        break;
      case "error":
        onError(f);
        break;
    }
  }

  function onError(f) {
    var op = f.op_id && queue.filter(function (o) { return o.op_id === f.op_id; })[0];
    if (f.op_id) delete sent[f.op_id]; // answered: its sending slot is free, whether it is still here or not
    if (!op) {
      if (f.reply_to === "presence") { // not worth a reconnect: say it again later
        presenceSent = null;
        if (f.code === "rate_limited") setTimeout(sendPresence, (f.detail && f.detail.retry_after_ms) || 1000);
        return;
      }
      if (f.op_id || f.room !== room || f.reply_to !== "join") return;
      if (f.code === "rate_limited") {
        // Too many joins, or snapshots, lately: the same connection joins
        // again when told (a new one would only be refused again).
        var sock = ws, wait = Math.max(50, (f.detail && f.detail.retry_after_ms) || 1000) * (1 + Math.random() / 4);
        busy = "The server is busy; joining again in " + Math.ceil(wait / 1000) + " s";
        setStatus();
        setTimeout(function () {
          if (ws !== sock || sock.readyState !== WebSocket.OPEN || live) return;
          busy = "";
          setStatus();
          rejoin();
        }, wait);
        return;
      }
      // The join failed. Refused: say so and try again later (a role may
      // come back); anything else: reconnect with backoff.
      if (f.code === "forbidden" || f.code === "not_found") blocked = "Cannot write in this room: " + f.message;
      if (ws) ws.close();
      return;
    }
    delete sent[op.op_id];
    if (f.code === "not_joined") {
      if (!rejoining) rejoin();
    } else if (refusedCodes[f.code]) {
      if (f.code === "conflict" && f.detail && f.detail.current) {
        op.current = f.detail.current;
        op.conflictAt = Date.now(); // what the device saved after it is newer than current (see changedMeanwhile)
        var known = state.findings[op.current.id];
        if (known && op.current.version > known.version) {
          newer[op.current.id] = op.current;
          newerAt[op.current.id] = op.conflictAt;
        }
        op.conflict = (f.detail.fields || []).filter(function (k) { return k in fieldNames; });
        op.yours = f.detail.yours; // those only this person changed, elsewhere (absent: none, or an older server's message says)
      }
      refuse(op, f.message || f.code);
    } else if (f.code === "rate_limited") {
      var wait = (f.detail && f.detail.retry_after_ms) || 1000;
      // The wait is for the next op only: the part of a token left when
      // refused can make it anything down to a millisecond. So the ops go
      // a bit more apart than it, at least 50 ms (the server's default
      // rate, 20 a second), and more again if the pace was still too
      // fast. (The ops behind it, held back, come with the same code:
      // they say nothing of the pace.)
      if (!(f.detail && f.detail.held_back)) pace = Math.min(Math.max(pace * 1.5, wait * 1.2, 50), 60000);
      later(op, wait);
    } else if (f.detail && f.detail.held_back) { // waits for an earlier op that failed: sent again after it
      later(op, internalWait);
    } else { // unavailable, internal and codes this page does not know: try again, slower each time
      if (f.code !== "unavailable" && f.code !== "unauthenticated") blame(op, f.message || f.code);
      trouble = f.message || f.code;
      later(op, internalWait);
      internalWait = Math.min(internalWait * 2, 30000);
    }
  }
  // blame looks, after op failed as internal, whether the server is
  // otherwise working (its database answers /readyz). The server holds
  // this page's later changes back until op is saved: an op that fails
  // so three times while the server works is at fault, not the server,
  // and is set aside as not saved, kept here to edit or drop, so that the
  // others go on. In an outage nothing is set aside.
  function blame(failedOp, message) {
    fetch("/readyz", { cache: "no-store" }).then(function (r) {
      var op = queue.filter(function (o) { return o.op_id === failedOp.op_id; })[0];
      if (!r.ok || !op) return;
      op.failures = (op.failures || 0) + 1;
      if (op.failures < 3) return save();
      refuse(op, "The server failed on this change three times while it was otherwise working (" + message + ")");
      internalWait = 2000;
      save();
      render();
    }, function () {});
  }
  // notMine handles a page kept on this device for another person than
  // the one now signed in (the page came from the device's cache, say):
  // that person's unsent changes must not go out in this one's name. It
  // stops, and loads the page again from the server, once.
  function notMine() {
    foreign = true;
    live = false;
    busy = "";
    var sock = ws;
    ws = null;
    if (sock) sock.close();
    var last = Number(sessionStorage.getItem("rapporteur:reloaded") || 0);
    if (Date.now() - last > 10000) {
      sessionStorage.setItem("rapporteur:reloaded", String(Date.now()));
      blocked = "This page was kept for someone else who used this device: loading yours…";
      location.reload();
    } else {
      blocked = "This page was kept for someone else who used this device: reload it.";
    }
  }
  // rejoin joins the room again from the seq held; ops wait for "joined".
  function rejoin() {
    rejoining = true;
    live = false;
    sent = {};
    joinAsked = performance.now();
    ws.send(JSON.stringify({ type: "join", room: room, since: state.seq, at: state.seq > 0 && state.at || "" }));
  }

  // The watchdog of a dead link (see patience). ping sends a ping
  // unless one waits for its answer; again, it sends one anew.
  function ping(again) {
    if (!ws || ws.readyState !== WebSocket.OPEN || (pingedAt >= 0 && !again)) return;
    pingedAt = performance.now();
    ws.send(JSON.stringify({ type: "ping" }));
  }
  var lastTick = performance.now();
  setInterval(function () {
    var now = performance.now(), slept = now - lastTick > 3000;
    lastTick = now;
    // A handshake no answer came to (a lost reply, a link that went dead
    // meanwhile) can take the browser minutes to give up: the page does.
    if (ws && ws.readyState === WebSocket.CONNECTING && now - ws.since > connectPatience) abandon();
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    var joining = !live || rejoining;
    if (slept) {
      // This page did not run for a while (a frozen tab, a sleeping
      // tablet): what came meanwhile may not be handled yet. Ask anew.
      if (pingedAt >= 0) ping(true);
    } else if (pingedAt >= 0 && now - pingedAt > (joining ? joinPatience : patience)) {
      if (joining) joinPatience = Math.min(joinPatience * 2, 200000);
      else patience = Math.min(patience * 2, 40000);
      abandon();
    } else if (now - lastHeard > 15000 || (!joining && Object.keys(sent).length && now - Math.max(lastHeard, opSentAt) > 3000)) {
      ping();
    }
  }, 1000);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && live && !rejoining) ping(true);
    // A page sent to the background may be ended without a pagehide
    // (tablets do so to free memory).
    if (document.visibilityState === "hidden") save();
  });
  // Signed out: look now and then whether this device is signed in again
  // (in another tab), and if so connect (joined then checks it is the
  // same person).
  setInterval(function () {
    if (!signedOut) return;
    fetch(location.href, { method: "HEAD", cache: "no-store" }).then(function (r) {
      if (!r.ok || !signedOut) return;
      signedOut = false;
      retry = 500;
      render();
      connect();
    }, function () {});
  }, 30000);
  window.addEventListener("online", function () {
    // A handshake begun on the link that went is not waited for.
    if (ws && ws.readyState === WebSocket.CONNECTING) abandon();
    if (!ws && timer !== null) { clearTimeout(timer); timer = null; retry = 500; connect(); }
  });
  // voteSeen holds the ids of the votes and unvotes another tab put in the
  // device's queue, as its writes' events told them. A tab busy meanwhile
  // (or whose copy of the storage lags) may read the queue only once such
  // a vote is settled, or write its older lists over the device's first:
  // the events still say that a vote came and was settled (see merge).
  var voteSeen = {};
  window.addEventListener("storage", function (e) {
    if ((e.key === storeKey + ":queue" || e.key === storeKey + ":done") && e.newValue) {
      try {
        var list = JSON.parse(e.newValue), theirs = false;
        list.forEach(function (x) {
          if (x && (x.kind === "vote" || x.kind === "unvote")) voteSeen[x.op_id] = true;
          if (typeof x === "string" && voteSeen[x]) { theirs = true; delete voteSeen[x]; }
        });
        if (theirs && live) fetchVotes();
      } catch (err) {}
    }
    // Signed out in another page of the device: so is this one, unless it
    // has another session by now (see probeSignIn).
    if (e.key === "rapporteur:signedout") probeSignIn();
    if (e.key === storeKey + ":queue" || e.key === storeKey + ":failed" || e.key === storeKey + ":done") {
      // Another tab wrote its lists before it saw this tab's: until written
      // again, what it left out is only in memory, and lost with the page.
      if (merge() && !storageFull) save();
      render();
      pump();
    }
    if (e.key === storeKey + ":acked" && adoptAcked(e.newValue)) render();
    if (e.key === draftPrefix + tabID && e.newValue === null && editing && !formDirty()) {
      // Another tab cleared this form as a tab gone's, nothing typed in it
      // (see findOrphans): this tab keeps it still, and says it is here.
      saveDraft();
      beAlive();
    } else if (e.key === draftPrefix + tabID && e.newValue === null && (editing || formDirty())) {
      // Another tab took this tab's form (it thought this one gone): it is
      // there now, not here, so it is not saved twice.
      editing = null;
      clearForm();
      setFormMode();
      sendPresence();
      formError.textContent = "What was in this form was taken into another tab or window of this device.";
    } else if (e.key && e.key.indexOf(draftPrefix) === 0 && findOrphans()) {
      render();
    }
  });
  // Text the page says may be lost if it closes (the device's storage
  // full: see setStatus) makes the browser ask before it goes: a change
  // sent but not saved yet, or refused; the form's text; the key messages
  // typed. Kept on the device, nothing is at risk, and nothing is asked.
  window.addEventListener("beforeunload", function (e) {
    if (!(storageFull && (queue.length || failed.length) || draftFull && formDirty() || kmFull && kmDraft)) return;
    e.preventDefault();
    e.returnValue = ""; // what older browsers need to ask
  });
  window.addEventListener("pagehide", function () {
    handOver();
    save();
    // A tab going with nothing in its form leaves no sign of life behind.
    if (!editing && !formDirty() && !kmDraft) { try { localStorage.removeItem(alivePrefix + tabID); } catch (e) {} }
  });
  window.addEventListener("pageshow", function (e) {
    if (!e.persisted) return;
    // Back from the page cache: a page loaded in this tab meanwhile had its
    // id, and its form and key messages, which the device keeps. They are
    // newer than what this page shows (saved meanwhile, perhaps): shown
    // here, they would be saved twice, or written over the newer text.
    // When the hand-over mark is gone, a page of another tab (duplicated
    // from this one) holds the id and the form: this page makes its own.
    if (!takeHandOver(tabID)) tabID = opID();
    keepTabID();
    editing = null;
    clearForm();
    restoreDraft();
    setFormMode();
    var km = load(":km:" + tabID, null);
    kmDraft = km && typeof km.text === "string" ? km : null;
    kmBox.value = kmDraft ? kmDraft.text : ""; // empty: render shows the group's
    save();
    findOrphans();
    render();
    sendPresence();
  });
  ["visibilitychange", "pageshow", "resume", "focus"].forEach(function (ev) {
    (ev === "visibilitychange" || ev === "resume" ? document : window).addEventListener(ev, function () { if (!document.hidden) beAlive(); });
  });

  // tooLong says which of body's texts is over the server's limit, and by
  // how much; "" when none is.
  function tooLong(body) {
    for (var k in maxChars) {
      var n = typeof body[k] === "string" ? Array.from(body[k]).length : 0;
      if (n > maxChars[k]) {
        return (k === "text" ? "The key messages" : "\u201c" + fieldNames[k] + "\u201d") + " is " + n.toLocaleString("en") +
          " characters long; at most " + maxChars[k].toLocaleString("en") + " can be saved. Please shorten it.";
      }
    }
    return "";
  }
  // sayLength shows in el whether body is too long to save, and clears
  // el's earlier word of it (and only that) once it is not.
  function sayLength(el, body) {
    var msg = tooLong(body);
    if (msg) el.textContent = msg;
    else if (el.dataset.length && el.textContent === el.dataset.length) el.textContent = "";
    el.dataset.length = msg;
    return msg;
  }
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var body = formBody();
    if (!body.title || sayLength(formError, body)) return;
    if (editing) {
      // draft and title stay on the device (not sent): what to show, and
      // what can be saved as new, should the finding be gone.
      var fields = changedFields(body);
      adoptAcked(); // what another tab saved, should its word be late
      if (fields && changedMeanwhile(fields)) return;
      if (!fields || enqueue({ kind: "finding.update", base: editing.base, body: { id: editing.id, fields: fields }, draft: body, title: editing.title })) stopEdit();
      return;
    }
    if (enqueue({ kind: "finding.create", body: body })) {
      clearForm();
      saveDraft();
    }
  });
  // changedMeanwhile tells whether a field that fields change was changed
  // since the form was opened, to another value, by another tab or window
  // of this device (which the server takes for this person's own change,
  // no conflict) or by someone else. The form then shows both values, as
  // after a conflict, based on the version now: saving again is a choice
  // made in sight of them, never an overwrite unseen.
  function changedMeanwhile(fields) {
    // Judged against this page's copy of the room: the one another tab
    // kept may be of the log a restore replaced. A tab whose link lags
    // learns of another tab's edit by its entry, while it is on the
    // device's queue, or as one of the device's lately saved updates
    // (see savedHere).
    var id = editing.id, base = state.findings[id];
    if (!base) return false; // gone: see render
    var have = {}, savedAt = {};
    acked.forEach(function (a) { have[a.op.op_id] = true; });
    var saved = load(":saved", []).filter(function (a) {
      if (!isAcked(a) || !lately(a) || a.op.kind !== "finding.update" || !a.op.body || a.op.body.id !== id) return false;
      savedAt[a.op.op_id] = a.t;
      return a.seq > state.seq && !have[a.op.op_id];
    });
    var f;
    if (base.version < editing.base) {
      // The form is based on a version newer than any known here (a
      // conflict's copy, its entry late): judged against that copy and
      // the updates acked or saved lately on it since.
      f = { id: id };
      Object.keys(editing.orig).forEach(function (k) { f[k] = editing.orig[k]; });
      // An update based on an older version counts when it was saved
      // after that copy came (a conflict's; see onError).
      acked.concat(saved).filter(function (a) {
        return a.op.kind === "finding.update" && a.op.body && a.op.body.id === id &&
          ((a.op.base || 0) >= editing.base || (editing.at > 0 && (savedAt[a.op.op_id] || a.t || 0) > editing.at));
      }).sort(bySeq).forEach(function (a) { f = overlay(f, a.op); });
    } else {
      // This page's copy, with the acked ops of the device and the
      // lately saved updates in the order the log applied them, and
      // then its changes not saved yet.
      f = base;
      acked.concat(saved).sort(bySeq).forEach(function (a) { f = overlay(f, a.op); });
      queue.forEach(function (op) { f = overlay(f, op); });
      if (f.gone) return false;
    }
    var now = fieldsOf(f), over = Object.keys(fields).filter(function (k) {
      return k in now && differs(now, editing.orig, k) && differs(now, fields, k);
    });
    if (!over.length) return false;
    var theirs = {}, body = fieldsOf(f);
    over.forEach(function (k) { theirs[k] = now[k]; });
    Object.keys(fields).forEach(function (k) { body[k] = fields[k]; });
    editing = { id: id, base: Math.max(base.version, editing.base), orig: now, title: f.title || "", theirs: theirs, at: editing.at };
    fillForm(body);
    setFormMode();
    saveDraft();
    formError.textContent = "Changed meanwhile, in another tab or window or by someone else: see each field below, then save again.";
    return true;
  }
  // differs tells whether field k of two forms' fields differs, as the
  // server compares them (a title trimmed, terms as a set).
  function differs(a, b, k) {
    var one = function (o) {
      var out = {};
      textFields.forEach(function (t) { out[t] = ""; });
      listFields.forEach(function (l) { out[l] = []; });
      if (o[k] !== undefined && o[k] !== null) out[k] = k === "title" ? String(o[k]).trim() : o[k];
      return out;
    };
    return !!changesOf(one(a), one(b));
  }
  cancelButton.addEventListener("click", function () {
    if (!formDirty() || window.confirm("Discard your changes? They are not saved.")) stopEdit();
  });
  kmForm.addEventListener("input", function () {
    if (!kmDraft) {
      // Written over the version shown; or, while this device's own save
      // is on its way, over that save once it is saved (afterText tells,
      // see renderKeyMessages), else over what it was based on.
      var mine = kmPending(), saved = kmAcked();
      var over = saved ? saved.base + 1 : state.km.version;
      kmDraft = mine ? { base: -1, prev: mine.base, after: mine.op_id, afterText: mine.body.text } :
        { base: over, prev: over, after: "", afterText: "" };
    }
    kmDraft.text = kmBox.value;
    kmError.textContent = keepKmDraft() ? "" : "This device's storage is full: the key messages typed here may be lost if the page closes.";
    if (!kmError.textContent) sayLength(kmError, { text: kmBox.value });
    renderKeyMessages();
    setStatus();
  });
  kmForm.addEventListener("submit", function (ev) {
    ev.preventDefault();
    if (kmLocked) return;
    if (sayLength(kmError, { text: kmBox.value })) return;
    if (kmPending()) {
      // One save at a time: a second over the same version would be
      // refused as a conflict with the first, and an op once kept is never
      // changed (it may have reached the server already).
      kmError.textContent = "Your previous save is on its way: save again once it is saved. Your text is kept here.";
      return;
    }
    // A base not known (-1: written before the group's text was known
    // here) is sent as 0: a conflict if anyone saved, with both texts.
    var saved = kmAcked();
    var base = Math.max(0, kmDraft ? (kmDraft.base >= 0 ? kmDraft.base : kmDraft.prev) : saved ? saved.base + 1 : state.km.version);
    if (enqueue({ kind: "keymessages.set", base: base, body: { text: kmBox.value } }, kmError)) {
      kmDraft = null;
      keepKmDraft();
      render();
    }
  });
  // The status also says whether the form holds text not yet saved.
  var onFormEdit = function () { saveDraft(); setStatus(); sayLength(formError, formBody()); };
  form.addEventListener("input", onFormEdit);
  form.addEventListener("change", onFormEdit);

  // Loading without a network (web/static/sw.js, https or localhost only):
  // the page and its files are kept on the device from the first load on,
  // before the worker controls the page: the worker is asked to keep it
  // once it runs (it checks the files' versions).
  if ("serviceWorker" in navigator && window.caches) {
    navigator.serviceWorker.register("/sw.js").catch(function () {});
    if (!navigator.serviceWorker.controller) {
      navigator.serviceWorker.ready.then(function (reg) {
        if (reg.active) reg.active.postMessage({ keep: location.pathname });
      }).catch(function () {});
    }
  }

  save(); // takes in what other tabs kept
  restoreDraft();
  kmDraft = load(":km:" + tabID, null);
  if (!kmDraft || typeof kmDraft.text !== "string") kmDraft = null;
  adoptKmDraft();
  if (kmDraft) kmBox.value = kmDraft.text;
  beAlive();
  setInterval(beAlive, 5000);
  render();
  connect();
})();
