// The live page: follows /live/events (Server-Sent Events) and keeps one card per call.
// Text goes in through textContent only, so nothing a caller says can become markup.
"use strict";

(function () {
  const root = document.getElementById("live-calls");
  if (!root) return;
  const empty = document.getElementById("live-empty");
  const status = document.getElementById("live-status");
  const template = document.getElementById("live-call");
  const cards = new Map();
  const timers = new Map();

  function setStatus(text, cls) {
    status.textContent = text;
    status.className = "pill " + cls;
  }

  function refreshEmpty() {
    empty.hidden = cards.size > 0;
  }

  function addLine(card, who, text) {
    const list = card.querySelector(".live-lines");
    const item = document.createElement("li");
    item.className = "turn " + (who === "caller" ? "customer" : "agent");
    const speaker = document.createElement("span");
    speaker.className = "speaker";
    speaker.textContent = who === "caller" ? "Customer" : "Agent";
    const said = document.createElement("span");
    said.className = "text";
    said.textContent = text;
    item.append(speaker, said);
    list.append(item);
    while (list.children.length > 50) list.firstElementChild.remove();
    list.scrollTop = list.scrollHeight;
  }

  function setState(card, state) {
    const pill = card.querySelector(".state");
    pill.textContent = state.replace("_", " ");
    pill.className = "pill state " + state;
  }

  function addCall(call) {
    removeCall(call.attempt_id);
    const card = template.content.firstElementChild.cloneNode(true);
    card.dataset.attempt = String(call.attempt_id);
    const link = card.querySelector(".call-link");
    link.href = "/calls/" + call.attempt_id;
    link.textContent = "Call " + call.attempt_id;
    const meta = card.querySelector(".meta");
    meta.dataset.base = call.campaign + " · started " + new Date(call.started_at).toLocaleTimeString();
    meta.textContent = meta.dataset.base;
    setState(card, call.state);
    for (const line of call.lines) addLine(card, line.who, line.text);
    root.prepend(card);
    cards.set(call.attempt_id, card);
    refreshEmpty();
  }

  function removeCall(id) {
    const card = cards.get(id);
    if (card) card.remove();
    cards.delete(id);
    clearTimeout(timers.get(id));
    timers.delete(id);
    refreshEmpty();
  }

  const handlers = {
    snapshot(data) {
      for (const id of Array.from(cards.keys())) removeCall(id);
      for (const call of data.calls) addCall(call);
    },
    started(data) { addCall(data.call); },
    answered(data) {
      const card = cards.get(data.attempt_id);
      if (card) setState(card, "answered");
    },
    said(data) {
      const card = cards.get(data.attempt_id);
      if (card) addLine(card, data.who, data.text);
    },
    timing(data) {
      const card = cards.get(data.attempt_id);
      if (!card) return;
      const meta = card.querySelector(".meta");
      meta.textContent = meta.dataset.base + " · last reply in " + data.response_ms + " ms";
    },
    ended(data) {
      const card = cards.get(data.attempt_id);
      if (!card) return;
      setState(card, data.outcome || data.status);
      card.classList.add("ended");
      timers.set(data.attempt_id, setTimeout(() => removeCall(data.attempt_id), 15000));
    },
  };

  const source = new EventSource(root.dataset.source);
  source.addEventListener("open", () => setStatus("live", "running"));
  source.addEventListener("error", () => setStatus("reconnecting…", "paused"));
  for (const [name, handle] of Object.entries(handlers)) {
    source.addEventListener(name, (event) => handle(JSON.parse(event.data)));
  }
})();
