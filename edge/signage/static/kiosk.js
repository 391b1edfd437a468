// The kiosk page: shows what the local player says (server-sent events from /events) and confirms each slot it
// put on screen (POST /shown), which is what turns a slot into a proof of play.
"use strict";
(() => {
  const stage = document.getElementById("stage");
  const alertBox = document.getElementById("emergency");
  const clock = document.getElementById("clock");
  const link = document.getElementById("link");
  const place = document.getElementById("place");
  let shownSlot = null;
  let emergencyId = null;
  let offsetMs = 0; // the player's clock minus this browser's (the player may run on a set "now")
  // The player's own render for its heartbeat's screenshot: it looks, it does not count as a play.
  const probe = new URLSearchParams(location.search).has("probe");

  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function confirmShown(slot) {
    if (probe) return;
    fetch("/shown", {method: "POST", headers: {"Content-Type": "application/json"},
                     body: JSON.stringify({slot: slot.id})}).catch(() => {});
  }

  function slideFrom(data, slot) {
    const box = el("article", {"class": "slide"});
    if (data.kicker) box.append(el("p", {"class": "kicker"}, data.kicker));
    box.append(el("h1", {}, data.title || slot.title || ""));
    if (data.body) box.append(el("p", {"class": "body"}, data.body));
    if (Array.isArray(data.lines) && data.lines.length) {
      const ul = el("ul");
      for (const line of data.lines) ul.append(el("li", {}, String(line)));
      box.append(ul);
    }
    if (data.footer) box.append(el("p", {"class": "foot"}, data.footer));
    return box;
  }

  // Builds the element for a slot; resolves once it can be seen.
  async function build(slot) {
    if (slot.media.startsWith("image/")) {
      const img = el("img", {src: slot.src, alt: slot.title || ""});
      await img.decode();
      return img;
    }
    if (slot.media.startsWith("video/")) {
      const video = el("video", {src: slot.src, muted: "", autoplay: "", loop: "", playsinline: ""});
      video.muted = true;
      const playing = new Promise((ok, fail) => {
        video.addEventListener("playing", ok, {once: true});
        video.addEventListener("error", () => fail(new Error("video")), {once: true});
      });
      stage.replaceChildren(video);
      await playing;
      return video;
    }
    if (slot.media.startsWith("text/html")) {
      const frame = el("iframe", {src: slot.src, sandbox: "allow-same-origin", title: slot.title || ""});
      const loaded = new Promise((ok) => frame.addEventListener("load", ok, {once: true}));
      stage.replaceChildren(frame);
      await loaded;
      return frame;
    }
    const r = await fetch(slot.src);
    if (!r.ok) throw new Error(`content ${r.status}`);
    return slideFrom(await r.json(), slot);
  }

  async function show(slot) {
    shownSlot = slot ? slot.id : null;
    if (!slot) {
      stage.replaceChildren(el("div", {"class": "idle"}, "　"));
      return;
    }
    try {
      const node = await build(slot);
      if (shownSlot !== slot.id) return; // a newer slot arrived meanwhile
      node.dataset.item = slot.item_id;
      node.dataset.slot = String(slot.id);
      if (node.parentNode !== stage) stage.replaceChildren(node);
      confirmShown(slot);
    } catch (err) {
      console.warn("could not show", slot.item_id, err);
    }
  }

  function showEmergency(em) {
    const id = em ? em.id : null;
    if (id === emergencyId) return;
    emergencyId = id;
    document.body.dataset.emergency = id || "";
    if (!em) {
      alertBox.hidden = true;
      return;
    }
    document.getElementById("emergency-title").textContent = em.title;
    document.getElementById("emergency-body").textContent = em.body;
    alertBox.hidden = false;
  }

  function apply(state) {
    offsetMs = Date.parse(state.now) - Date.now();
    place.textContent = state.screen ? (state.screen.place || state.screen.name) : "";
    link.textContent = state.online ? "" : "オフライン再生中 Offline: playing from the cache";
    link.className = state.online ? "" : "offline";
    showEmergency(state.emergency);
    const slotId = state.slot ? state.slot.id : null;
    if (slotId !== shownSlot) show(state.slot);
  }

  function tick() {
    const t = new Date(Date.now() + offsetMs);
    clock.textContent = t.toLocaleString("ja-JP", {timeZone: "Asia/Tokyo", month: "numeric", day: "numeric",
      weekday: "short", hour: "2-digit", minute: "2-digit"});
  }
  setInterval(tick, 1000);

  if (probe) { // one look: a stream that never ends would keep a headless render waiting for the network for ever
    fetch("/now").then((r) => r.json()).then((state) => { apply(state); tick(); });
  } else {
    const source = new EventSource("/events");
    source.addEventListener("state", (e) => { apply(JSON.parse(e.data)); tick(); });
  }
})();
