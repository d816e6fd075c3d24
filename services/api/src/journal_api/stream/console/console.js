// The operator console (docs/40_CONSOLE.md): one WebSocket to /ws speaking journal.v1 (docs/30_WS_PROTOCOL.md).
// Every value from the server is untrusted: it reaches the page through textContent and attributes only.
"use strict";

const MAX_ROWS = 1000;
const MAX_PAYLOAD_CHARS = 1000;
const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;
const IDLE_PING_MS = 30000; // silence after which the page asks the server for a sign of life
const PING_TIMEOUT_MS = 10000; // then waits this long before it calls the connection dead
const CHANNELS = ["events", "trades", "snapshots"];
const LEVELS = ["debug", "info", "warn", "error", "critical"];
const TOKEN_KEY = "journal.console.token"; // sessionStorage only: never localStorage, never the URL
const POSITION_KEY = "journal.console.position"; // localStorage: {"cursor": "…", "epoch": "…"}
const CHANNELS_KEY = "journal.console.channels"; // localStorage: the checked channels
const CURSOR_TEXT = /^[0-9]{1,19}$/;
const RESUMABLE = new Set([1001, 1006, 1011, 1012, 1013, 4429]);
const CLOSE_TEXT = new Map([
  [1000, "the server closed the connection"],
  [1001, "the server went away"],
  [1006, "no connection to the server"],
  [1009, "a message was too large"],
  [1011, "the server failed"],
  [1012, "the server is restarting"],
  [1013, "the server is busy"],
]);

const ui = {
  status: document.getElementById("status"),
  startOver: document.getElementById("start-over"),
  login: document.getElementById("login"),
  token: document.getElementById("token"),
  forget: document.getElementById("forget"),
  renew: document.getElementById("renew"),
  renewNote: document.getElementById("renew-note"),
  newToken: document.getElementById("new-token"),
  channels: Array.from(document.querySelectorAll('input[name="channel"]')),
  position: document.getElementById("position"),
  count: document.getElementById("count"),
  wrap: document.getElementById("table-wrap"),
  rows: document.getElementById("rows"),
};

let token = null; // held in memory too, so the page works when storage is unavailable
let socket = null; // the current connection; events of any earlier one are ignored
let epoch = null; // from the current connection's ready frame
let lastError = null; // the current connection's error frame
let retryTimer = null;
let watchdog = null;
let delay = BACKOFF_FIRST_MS;
let lastFrameAt = 0;
let pingSentAt = null;
let pending = []; // events waiting for the next batch of rows
let flushTimer = null;
let renewing = null; // the token sent in an auth message, until its auth_ok

// Storage can be disabled or full: the console then still works, it only cannot resume after a reload.
function load(area, key) {
  try {
    return window[area].getItem(key);
  } catch {
    return null;
  }
}

function store(area, key, value) {
  try {
    if (value === null) {
      window[area].removeItem(key);
    } else {
      window[area].setItem(key, value);
    }
    return true;
  } catch {
    return false;
  }
}

function savedPosition() {
  try {
    const position = JSON.parse(load("localStorage", POSITION_KEY));
    if (position && CURSOR_TEXT.test(position.cursor) && typeof position.epoch === "string") {
      return { cursor: position.cursor, epoch: position.epoch };
    }
  } catch {
    // not JSON: as if nothing were saved
  }
  return null;
}

function savePosition(cursor) {
  const saved = store("localStorage", POSITION_KEY, JSON.stringify({ cursor, epoch }));
  ui.position.textContent = saved
    ? `cursor ${cursor} (epoch ${epoch})`
    : `cursor ${cursor} (not saved: storage unavailable)`;
}

function showPosition() {
  const position = savedPosition();
  ui.position.textContent = position
    ? `cursor ${position.cursor} (epoch ${position.epoch})`
    : "no saved cursor: starting from the newest event";
}

function savedChannels() {
  try {
    const channels = JSON.parse(load("localStorage", CHANNELS_KEY));
    if (Array.isArray(channels)) {
      const known = CHANNELS.filter((channel) => channels.includes(channel));
      if (known.length > 0) {
        return known;
      }
    }
  } catch {
    // not JSON: every channel
  }
  return CHANNELS;
}

function selectedChannels() {
  return ui.channels.filter((box) => box.checked).map((box) => box.value);
}

function setStatus(state, text) {
  ui.status.dataset.state = state;
  ui.status.textContent = text;
  ui.startOver.hidden = state !== "reset";
  ui.login.hidden = state !== "signed-out" && state !== "stopped";
  ui.forget.hidden = token === null;
}

function socketUrl() {
  const url = new URL("/ws", window.location.href);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.href;
}

function subscribeMessage() {
  const message = { op: "subscribe", token };
  const position = savedPosition();
  if (position) {
    message.cursor = position.cursor;
    message.epoch = position.epoch;
  }
  const channels = selectedChannels();
  if (channels.length < CHANNELS.length) {
    message.filter = { channels };
  }
  return JSON.stringify(message);
}

function connect() {
  disconnect();
  setStatus("connecting", "connecting…");
  const ws = new WebSocket(socketUrl());
  socket = ws;
  epoch = null;
  lastError = null;
  lastFrameAt = Date.now();
  pingSentAt = null;
  ws.addEventListener("open", () => {
    if (ws === socket) {
      ws.send(subscribeMessage());
    }
  });
  ws.addEventListener("message", (message) => {
    if (ws === socket) {
      onFrame(message.data);
    }
  });
  ws.addEventListener("close", (close) => {
    if (ws === socket) {
      onClose(close.code, close.reason);
    }
  });
  watchdog = setInterval(checkLiveness, 1000);
}

// Forget the current connection (its late events are ignored) and any reconnection waiting.
function disconnect() {
  renewing = null;
  ui.renew.hidden = true;
  clearTimeout(retryTimer);
  retryTimer = null;
  clearInterval(watchdog);
  watchdog = null;
  if (socket !== null) {
    const ws = socket;
    socket = null;
    ws.close(1000);
  }
}

function checkLiveness() {
  const now = Date.now();
  if (pingSentAt !== null) {
    if (now - pingSentAt >= PING_TIMEOUT_MS) {
      onClose(1006, "no answer from the server");
    }
  } else if (now - lastFrameAt >= IDLE_PING_MS) {
    if (socket.readyState !== WebSocket.OPEN) {
      onClose(1006, "no connection to the server");
      return;
    }
    socket.send('{"op":"ping"}');
    pingSentAt = now;
  }
}

function onFrame(data) {
  lastFrameAt = Date.now();
  pingSentAt = null;
  let frame;
  try {
    frame = JSON.parse(data);
  } catch {
    return;
  }
  if (frame === null || typeof frame !== "object") {
    return;
  }
  switch (frame.op) {
    case "ready":
      epoch = frame.epoch;
      delay = BACKOFF_FIRST_MS;
      savePosition(frame.cursor);
      setStatus("replaying", `replaying from ${frame.cursor} to ${frame.head}`);
      break;
    case "event":
      enqueue(frame.event);
      savePosition(frame.cursor);
      break;
    case "live":
      savePosition(frame.cursor);
      setStatus("live", "live");
      break;
    case "heartbeat":
      savePosition(frame.cursor);
      break;
    case "expiring":
      showRenew(frame.exp);
      break;
    case "auth_ok":
      if (renewing !== null) {
        token = renewing;
        store("sessionStorage", TOKEN_KEY, token);
      }
      renewing = null;
      ui.renew.hidden = true;
      break;
    case "error":
      lastError = frame;
      break;
    default: // pong, or an op this page does not know
  }
}

function onClose(code, reason) {
  const message =
    (lastError && String(lastError.message)) || reason || CLOSE_TEXT.get(code) || "the connection closed";
  disconnect();
  if (RESUMABLE.has(code)) {
    setStatus("reconnecting", `reconnecting in ${delay / 1000} s: ${message} (${code})`);
    retryTimer = setTimeout(connect, delay);
    delay = Math.min(delay * 2, BACKOFF_MAX_MS);
  } else if (code === 4409) {
    setStatus("reset", `${message} (${code})`);
  } else {
    if (code === 4401) {
      forgetToken();
    }
    setStatus("stopped", `${message} (${code})`);
  }
}

// The server warns before the token expires (docs/60_ACCESS.md): the operator pastes a new one, sent as auth on the
// open connection, so the stream goes on without a reconnect.
function showRenew(exp) {
  const when = typeof exp === "number" ? new Date(exp * 1000).toISOString().slice(11, 19) : "soon";
  ui.renewNote.textContent = `your token expires at ${when} UTC; paste a new one`;
  ui.renew.hidden = false;
}

function onRenew(submit) {
  submit.preventDefault();
  const fresh = ui.newToken.value;
  ui.newToken.value = "";
  if (fresh === "" || socket === null || socket.readyState !== WebSocket.OPEN) {
    return;
  }
  renewing = fresh;
  socket.send(JSON.stringify({ op: "auth", token: fresh }));
}

function forgetToken() {
  token = null;
  store("sessionStorage", TOKEN_KEY, null);
}

function enqueue(event) {
  pending.push(event);
  if (pending.length > MAX_ROWS) {
    pending.splice(0, pending.length - MAX_ROWS);
  }
  if (flushTimer === null) {
    flushTimer = setTimeout(flush, 0);
  }
}

function flush() {
  flushTimer = null;
  const wrap = ui.wrap;
  const following = wrap.scrollHeight - wrap.scrollTop - wrap.clientHeight < 8;
  const batch = document.createDocumentFragment();
  for (const event of pending) {
    batch.append(row(event));
  }
  pending = [];
  ui.rows.append(batch);
  while (ui.rows.childElementCount > MAX_ROWS) {
    ui.rows.firstElementChild.remove();
  }
  showCount();
  if (following) {
    wrap.scrollTop = wrap.scrollHeight;
  }
}

function showCount() {
  const rows = ui.rows.childElementCount;
  ui.count.textContent = `${rows} ${rows === 1 ? "row" : "rows"} (newest at the bottom, at most ${MAX_ROWS})`;
}

function row(event) {
  const tr = document.createElement("tr");
  tr.dataset.id = text(event.id);
  tr.dataset.channel = text(event.channel);
  tr.dataset.level = text(event.level);
  if (LEVELS.includes(event.level)) {
    tr.classList.add(`level-${event.level}`);
  }
  cell(tr, "id", text(event.id));
  cell(tr, "time", displayTime(text(event.ts))).title = text(event.ts);
  cell(tr, "level", text(event.level));
  cell(tr, "type", text(event.type));
  cell(tr, "channel", text(event.channel));
  cell(tr, "symbol", text(event.symbol));
  cell(tr, "trade_id", text(event.trade_id));
  cell(tr, "payload", payloadText(event.payload));
  return tr;
}

function cell(tr, column, value) {
  const td = document.createElement("td");
  td.dataset.col = column;
  td.textContent = value;
  tr.append(td);
  return td;
}

function text(value) {
  return value === null || value === undefined ? "" : String(value);
}

function displayTime(ts) {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}/.test(ts) ? `${ts.slice(0, 10)} ${ts.slice(11, 23)}` : ts;
}

function payloadText(payload) {
  const json = JSON.stringify(payload) ?? "";
  return json.length > MAX_PAYLOAD_CHARS
    ? `${json.slice(0, MAX_PAYLOAD_CHARS)} … (${json.length} characters)`
    : json;
}

function onChannelsChanged(change) {
  const channels = selectedChannels();
  if (channels.length === 0) {
    change.target.checked = true; // a filter needs at least one channel
    return;
  }
  store("localStorage", CHANNELS_KEY, JSON.stringify(channels));
  for (const tr of Array.from(ui.rows.children)) {
    if (!channels.includes(tr.dataset.channel)) {
      tr.remove();
    }
  }
  pending = pending.filter((event) => channels.includes(event.channel));
  showCount();
  if (socket !== null || retryTimer !== null) {
    connect(); // subscribe again from the saved cursor with the new filter
  }
}

function onLogin(submit) {
  submit.preventDefault(); // the page never navigates (the CSP says form-action 'none')
  if (ui.token.value === "") {
    return;
  }
  token = ui.token.value;
  ui.token.value = "";
  store("sessionStorage", TOKEN_KEY, token);
  delay = BACKOFF_FIRST_MS;
  connect();
}

function onForget() {
  disconnect();
  forgetToken();
  setStatus("signed-out", "enter a token to connect");
}

function onStartOver() {
  store("localStorage", POSITION_KEY, null);
  showPosition();
  delay = BACKOFF_FIRST_MS;
  connect();
}

function start() {
  const channels = savedChannels();
  for (const box of ui.channels) {
    box.checked = channels.includes(box.value);
    box.addEventListener("change", onChannelsChanged);
  }
  ui.login.addEventListener("submit", onLogin);
  ui.forget.addEventListener("click", onForget);
  ui.renew.addEventListener("submit", onRenew);
  ui.startOver.addEventListener("click", onStartOver);
  window.addEventListener("pagehide", () => disconnect());
  window.addEventListener("pageshow", (show) => {
    if (show.persisted && token !== null) {
      connect(); // back from the back-forward cache: the connection was closed on pagehide
    }
  });
  showPosition();
  showCount();
  token = load("sessionStorage", TOKEN_KEY);
  if (token) {
    connect();
  } else {
    token = null;
    setStatus("signed-out", "enter a token to connect");
  }
}

start();
