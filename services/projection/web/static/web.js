// Live pages: one EventSource per page on /web/live.
// - "signal": a new signal becomes a card at the top of the list (built with textContent:
//   nothing from the stream is parsed as HTML);
// - "changed": the projection changed an opportunity; the page fetches itself again and swaps
//   its [data-live-part] blocks (members, score, tier, status, new rows) for the fresh ones,
//   so it shows what a reload would, without one. Fetches coalesce: one in flight, one queued.
"use strict";

(function () {
  const panel = document.getElementById("live");
  if (!panel || !window.EventSource) return;
  const list = document.getElementById("live-list");
  const state = document.getElementById("live-state");
  const text = (key) => panel.dataset["text" + key] || "";
  const filter = panel.dataset.filter;
  const url = "/web/live" + (filter ? "?opportunity=" + encodeURIComponent(filter) : "");
  const marks = new Map(); // opportunity id -> the label of its latest live signal

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
    const label = el("strong", "signal-label", s.label);
    if (s.backfill) label.append(" ", el("span", "backfill", text("Backfill")));
    head.append(label, el("span", "signal-at", s.at));
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

  function row(id) {
    return document.querySelector('tr[data-opportunity-id="' + CSS.escape(id || "") + '"]');
  }

  function flash(node) {
    node.classList.remove("flash");
    void node.offsetWidth; // restart the animation
    node.classList.add("flash");
  }

  function markRow(id, label, animate) {
    const found = row(id);
    if (!found) return;
    const badge = found.querySelector(".new-signal");
    badge.textContent = text("New") + ": " + label;
    badge.hidden = false;
    if (animate) flash(found);
  }

  // What each live block looked like as the server sent it, to compare with a fresh copy.
  function remember(root) {
    root.querySelectorAll("[data-live-part]").forEach((node) => { node.dataset.html = node.innerHTML; });
  }
  remember(document);

  let inFlight = false;
  let queued = false;
  const changedIds = new Set();

  async function refresh() {
    if (inFlight) { queued = true; return; }
    inFlight = true;
    const ids = Array.from(changedIds);
    changedIds.clear();
    try {
      const response = await fetch(window.location.href, {credentials: "same-origin", headers: {"Accept": "text/html"}});
      if (response.ok) {
        const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
        remember(fresh);
        document.querySelectorAll("[data-live-part]").forEach((old) => {
          const part = fresh.querySelector('[data-live-part="' + CSS.escape(old.dataset.livePart) + '"]');
          // Only what changed is swapped: an unchanged block keeps its nodes (and a click on them).
          if (part && part.dataset.html !== old.dataset.html) old.replaceWith(document.adoptNode(part));
        });
        marks.forEach((label, id) => markRow(id, label, false));
        ids.forEach((id) => { const found = row(id); if (found) flash(found); });
        document.body.dataset.refreshed = String(Number(document.body.dataset.refreshed || "0") + 1);
      }
    } catch (error) {
      // The next change, or the next reconnect, tries again.
    } finally {
      inFlight = false;
      if (queued) { queued = false; window.setTimeout(refresh, 250); }
    }
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
    marks.set(s.opportunity_id, s.label);
    markRow(s.opportunity_id, s.label, true);
  });
  source.addEventListener("changed", (event) => {
    changedIds.add(JSON.parse(event.data).opportunity_id);
    refresh();
  });
})();
