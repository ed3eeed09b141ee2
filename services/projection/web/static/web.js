// Live signals: one EventSource per page on /web/live; each new signal becomes a card at the
// top of the list (built with textContent: nothing from the stream is parsed as HTML).
"use strict";

(function () {
  const panel = document.getElementById("live");
  if (!panel || !window.EventSource) return;
  const list = document.getElementById("live-list");
  const state = document.getElementById("live-state");
  const text = (key) => panel.dataset["text" + key] || "";
  const filter = panel.dataset.filter;
  const url = "/web/live" + (filter ? "?opportunity=" + encodeURIComponent(filter) : "");

  function setState(name, label) {
    document.body.dataset.live = name;
    state.textContent = label;
  }

  function el(tag, cls, content) {
    const node = document.createElement(tag);
    if (cls) node.className = cls;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  function card(s) {
    const li = el("li", "signal fresh sig-" + s.code);
    li.id = "sig-" + s.signal_id;
    li.dataset.signalId = s.signal_id;
    const head = el("div", "signal-head");
    head.append(el("strong", "signal-label", s.label), el("span", "signal-at", s.at));
    li.append(head);
    if (!filter && s.account) {
      const a = el("a", "signal-account", s.account + " · " + s.solution);
      a.href = s.url;
      li.append(a);
    }
    li.append(el("div", "signal-score", text("Score") + " " + s.score + " · " + s.tier));
    if (s.covered.length) li.append(el("div", "roles-line", "✓ " + s.covered.join(", ")));
    if (s.missing.length) li.append(el("div", "roles-line", "○ " + s.missing.join(", ")));
    if (s.people.length) li.append(el("div", "people", s.people.join(", ")));
    return li;
  }

  function markRow(s) {
    const row = document.querySelector('tr[data-opportunity-id="' + CSS.escape(s.opportunity_id || "") + '"]');
    if (!row) return;
    const badge = row.querySelector(".new-signal");
    badge.textContent = text("New") + ": " + s.label;
    badge.hidden = false;
    row.classList.remove("flash");
    void row.offsetWidth; // restart the animation
    row.classList.add("flash");
  }

  const source = new EventSource(url);
  source.addEventListener("open", () => setState("connecting", text("Connecting")));
  source.addEventListener("ready", () => setState("open", text("Open")));
  source.addEventListener("error", () => setState("closed", text("Closed")));
  source.addEventListener("signal", (event) => {
    const s = JSON.parse(event.data);
    if (document.getElementById("sig-" + s.signal_id)) return; // already on the page
    const empty = document.getElementById("live-empty");
    if (empty) empty.remove();
    list.prepend(card(s));
    markRow(s);
  });
})();
