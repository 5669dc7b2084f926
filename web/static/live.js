// live.js: the workshop page on a tablet. It follows hub/PROTOCOL.md.
// Nothing typed is lost: every change is kept in this device's storage
// until the server acknowledges it, resent by itself after a reconnect
// (with the same op id, so it is applied once), and shown as "on this
// device" until then.
(function () {
  "use strict";
  var root = document.getElementById("workshop");
  if (!root) return;
  var room = root.dataset.room;
  var storeKey = "rapporteur:" + room;
  var statusEl = document.getElementById("status");
  var listEl = document.getElementById("findings");
  var form = document.getElementById("new-finding");

  // Local state: the room's seq and findings as last seen, and the queue of
  // ops not yet acknowledged, both kept in localStorage.
  var state = load(storeKey + ":state", { seq: 0, findings: {} });
  var queue = load(storeKey + ":queue", []);
  var failed = [];
  var ws = null, live = false, retry = 500;

  function load(key, fallback) {
    try { var v = localStorage.getItem(key); return v ? JSON.parse(v) : fallback; } catch (e) { return fallback; }
  }
  function save() {
    localStorage.setItem(storeKey + ":state", JSON.stringify(state));
    localStorage.setItem(storeKey + ":queue", JSON.stringify(queue));
  }
  function opID() {
    var b = new Uint8Array(16);
    crypto.getRandomValues(b);
    return Array.prototype.map.call(b, function (x) { return ("0" + x.toString(16)).slice(-2); }).join("");
  }

  function setStatus() {
    var n = queue.length;
    var text, cls;
    if (live && n === 0) { text = "Live · every change is saved"; cls = "live"; }
    else if (live) { text = "Saving " + n + " change" + (n === 1 ? "" : "s") + "…"; cls = "saving"; }
    else if (n > 0) { text = "Offline · " + n + " change" + (n === 1 ? "" : "s") + " kept on this device, not saved yet; they will be sent when the connection is back"; cls = "offline"; }
    else { text = "Offline · reconnecting…"; cls = "offline"; }
    statusEl.textContent = text;
    statusEl.className = "status " + cls;
  }

  function apply(e) {
    if (e.seq <= state.seq) return;
    var p = e.payload || {};
    switch (e.kind) {
      case "finding.create": state.findings[p.id] = p; break;
      case "finding.update": if (p.finding) state.findings[p.finding.id] = p.finding; break;
      case "finding.delete": delete state.findings[p.id]; break;
      case "vote": case "unvote":
        if (state.findings[p.finding_id]) state.findings[p.finding_id].votes = p.votes; break;
      case "finding.release":
        if (state.findings[p.finding_id]) state.findings[p.finding_id].release_state = p.release_state; break;
      case "key.mark": case "key.unmark": case "key.reorder":
        var order = p.order || [];
        Object.keys(state.findings).forEach(function (id) {
          var i = order.indexOf(Number(id));
          state.findings[id].is_key = i >= 0;
          state.findings[id].key_position = i >= 0 ? i + 1 : null;
        });
        break;
    }
    state.seq = e.seq;
  }

  function render() {
    listEl.textContent = "";
    var items = Object.keys(state.findings).map(function (k) { return state.findings[k]; });
    items.sort(function (a, b) { return a.id - b.id; });
    items.forEach(function (f) { listEl.appendChild(item(f, false)); });
    queue.forEach(function (op) {
      if (op.kind === "finding.create") listEl.appendChild(item(op.body, true));
    });
    failed.forEach(function (x) {
      var li = item(x.op.body || {}, false);
      li.classList.add("failed");
      li.querySelector(".state").textContent = "Not saved: " + x.message;
      listEl.appendChild(li);
    });
    setStatus();
  }

  function item(f, pending) {
    var li = document.createElement("li");
    li.className = "finding" + (pending ? " pending" : " saved");
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
    st.textContent = pending ? "On this device · not saved yet" : "Saved" + (f.is_key ? " · key finding" : "") + (f.votes ? " · " + f.votes + " support" : "");
    li.appendChild(st);
    if (!pending && f.id) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "vote";
      b.textContent = "Support";
      b.addEventListener("click", function () { enqueue({ kind: "vote", body: { finding_id: f.id } }); });
      li.appendChild(b);
    }
    return li;
  }

  function enqueue(op) {
    op.op_id = opID();
    queue.push(op);
    save();
    render();
    if (live) send(op);
  }

  function send(op) {
    var frame = { type: "op", room: room, op_id: op.op_id, kind: op.kind, body: op.body };
    if (op.base) frame.base = op.base;
    ws.send(JSON.stringify(frame));
  }

  function connect() {
    var url = (location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws";
    ws = new WebSocket(url);
    ws.onopen = function () {
      retry = 500;
      ws.send(JSON.stringify({ type: "join", room: room, since: state.seq }));
    };
    ws.onmessage = function (m) {
      // A message holds one frame or several, a frame a line.
      String(m.data).split("\n").forEach(handle);
      save();
      render();
    };
    function handle(line) {
      var f;
      try { f = JSON.parse(line); } catch (e) { return; }
      switch (f.type) {
        case "snapshot":
          state = { seq: f.seq, findings: {} };
          ((f.state && f.state.findings) || []).forEach(function (x) { state.findings[x.id] = x; });
          break;
        case "entry":
          apply(f);
          // The entry proves the op committed, even if its ack is still on the way.
          queue = queue.filter(function (op) { return op.op_id !== f.op_id; });
          break;
        case "joined":
          live = true;
          queue.forEach(send); // resend everything not yet acknowledged, in order
          break;
        case "ack":
          queue = queue.filter(function (op) { return op.op_id !== f.op_id; });
          break;
        case "error":
          if (!f.op_id) break;
          var op = queue.filter(function (o) { return o.op_id === f.op_id; })[0];
          if (!op) break;
          if (f.code === "rate_limited" || f.code === "unavailable" || f.code === "internal") {
            // Not applied, and worth trying again: the op stays queued.
            var wait = (f.detail && f.detail.retry_after_ms) || 2000;
            setTimeout(function () {
              if (live && queue.indexOf(op) >= 0) send(op);
            }, wait);
          } else {
            // Refused for good (invalid, forbidden, conflict): say so, keep the text visible.
            queue = queue.filter(function (o) { return o !== op; });
            failed.push({ op: op, message: f.message });
          }
          break;
      }
    }
    ws.onclose = function () {
      live = false;
      setStatus();
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var data = new FormData(form);
    var body = {
      title: data.get("title"),
      what_done: data.get("what_done") || "",
      results: data.get("results") || "",
      transferability: data.get("transferability") || "",
      countries: data.getAll("countries"),
      themes: data.getAll("themes")
    };
    if (!body.title) return;
    enqueue({ kind: "finding.create", body: body });
    form.reset();
  });

  render();
  connect();
})();
