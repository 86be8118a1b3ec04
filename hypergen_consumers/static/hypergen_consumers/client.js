/*
 * hypergen_consumers client: takes over window.hypergen.websocket (open, close, WEBSOCKETS)
 * so hypergen's callback() to a ws:// URL and the commands hypergen.websocket.open/.close
 * go through sockets that reconnect forever (exponential backoff, full jitter), queue what
 * the page sends while down, and report their state:
 *   - class "hypergen-websocket-offline" on <html> while any opened socket is down;
 *   - window events hypergen:websocket:open, :close, :error, :message (detail.url).
 * Close codes 4401 (session ended) and 4403 (permission denied) are final: no retry, the
 * queue is dropped with a warning and hypergen:websocket:denied fires (detail.url, .code);
 * 4404 (no consumer at that path) is final too and fires hypergen:websocket:notfound.
 * A heartbeat finds a dead path (a laptop lid, a NAT timeout) without waiting for the OS,
 * within window.hypergen_consumers_heartbeat_ms (default 30000; 0 turns it off): every half
 * of that an open socket sends {"args":[],"meta":{"heartbeat":true}}; when nothing at all
 * came back by the next one, the socket is taken as dead: closed, shown offline,
 * reconnected with backoff. The browser's "offline" event does the same at once.
 * Reconnecting starts fast: the n-th retry waits a random time up to
 * min(MAX_DELAY_MS, BASE_DELAY_MS * 2^n) (full jitter); see hypergen.websocket.backoff.
 * Load it after hypergen.js. Loading it twice is harmless.
 */
(function () {
  "use strict";

  var hypergen = window.hypergen;
  if (!hypergen) {
    console.error("hypergen_consumers/client.js: load it after hypergen's own hypergen.js.");
    return;
  }
  if (hypergen.websocket && hypergen.websocket.isHypergenConsumersClient) {
    return;
  }

  var OFFLINE_CLASS = "hypergen-websocket-offline";
  // Like Phoenix: the first retry comes well under a second, the cap is about 5 s.
  var BACKOFF = { BASE_DELAY_MS: 250, MAX_DELAY_MS: 5000 };
  var FINAL_CLOSE_CODES = [4401, 4403, 4404];
  var NOT_FOUND = 4404;
  var MAX_QUEUE = 1000;
  var WEBSOCKETS = {};
  var applyingUrl = null;

  function emit(name, url, extra) {
    var detail = Object.assign({ url: url }, extra || {});
    window.dispatchEvent(new CustomEvent("hypergen:websocket:" + name, { detail: detail }));
  }

  function updateOfflineClass() {
    var down = Object.keys(WEBSOCKETS).some(function (url) {
      return !WEBSOCKETS[url].isOpen();
    });
    document.documentElement.classList.toggle(OFFLINE_CLASS, down);
  }

  function Connection(url) {
    this.url = url;
    this.queue = [];
    this.attempt = 0;
    this.closed = false;
    this.socket = null;
    this.timer = null;
    this.delays = []; // The last retry delays (ms) this connection chose, for pages and tests.
    this.unanswered = 0; // Sent since the socket opened, before the server sent anything.
    initDelivery(this);
    initPushes(this);
  }

  Connection.prototype.isOpen = function () {
    return this.socket !== null && this.socket.readyState === WebSocket.OPEN;
  };

  Connection.prototype.connect = function () {
    if (this.closed) return;
    clearTimeout(this.timer);
    this.timer = null;
    if (this.socket !== null) return; // One live socket per URL, never more.
    var self = this;
    var socket = new WebSocket(withHeartbeat(resumeUrl(this)));
    this.socket = socket;
    startHeartbeat(this, socket);
    socket.onopen = function () {
      self.attempt = 0;
      requeueUnacknowledged(self);
      // A refusal (4403) arrives right after "open": what is flushed now counts as dropped
      // if the socket is refused before the server says anything.
      self.unanswered = self.queue.length;
      self.flush();
      updateOfflineClass();
      emit("open", self.url);
    };
    socket.onmessage = function (event) {
      self.receive(event.data);
    };
    socket.onerror = function () {
      emit("error", self.url, { code: "connection_error", message: "The websocket connection failed." });
    };
    socket.onclose = function (event) {
      self.ended(socket, event.code, event.reason);
    };
  };

  // A socket of this connection ended: closed by either side, or given up for dead.
  Connection.prototype.ended = function (socket, code, reason) {
    if (this.socket === socket) this.socket = null;
    stopHeartbeat(this);
    updateOfflineClass();
    emit("close", this.url, { code: code, reason: reason });
    if (FINAL_CLOSE_CODES.indexOf(code) !== -1) {
      this.deny(code);
    } else {
      this.scheduleReconnect();
    }
  };

  // The server refused this socket for good (4401 session ended, 4403 permission denied,
  // 4404 no consumer at that path): retrying cannot help, so stop, forget the socket and
  // tell the page (hypergen:websocket:denied, or hypergen:websocket:notfound for 4404).
  Connection.prototype.deny = function (code) {
    var dropped = this.queue.length + this.unanswered;
    if (dropped > 0) {
      console.warn("hypergen_consumers: " + this.url + " was refused (close code " + code + "); dropped " + dropped + " queued message(s).");
    }
    this.unanswered = 0;
    failPushes(this, "denied", "The server refused " + this.url + " for good (close code " + code + ").");
    if (WEBSOCKETS[this.url] === this) delete WEBSOCKETS[this.url];
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
    updateOfflineClass();
    emit(code === NOT_FOUND ? "notfound" : "denied", this.url, { code: code });
  };

  // The ceiling of the n-th retry's random delay (n counts from 0).
  function backoffCeiling(attempt) {
    return Math.min(BACKOFF.MAX_DELAY_MS, BACKOFF.BASE_DELAY_MS * Math.pow(2, attempt));
  }

  Connection.prototype.scheduleReconnect = function () {
    if (this.closed || this.timer !== null) return;
    var delay = Math.random() * backoffCeiling(this.attempt); // Full jitter: spreads reconnects after an outage.
    this.attempt += 1;
    this.delays.push(delay);
    if (this.delays.length > 20) this.delays.shift();
    var self = this;
    this.timer = setTimeout(function () {
      self.timer = null;
      self.connect();
    }, delay);
  };

  Connection.prototype.reconnectNow = function () {
    if (this.closed || this.socket !== null) return;
    this.attempt = 0;
    this.connect();
  };

  Connection.prototype.send = function (text) {
    text = numberFrame(this, text);
    if (this.isOpen() && this.queue.length === 0) {
      this.socket.send(text);
      return;
    }
    this.queue.push(text);
    if (this.queue.length > MAX_QUEUE) {
      this.queue.shift();
      console.warn("hypergen_consumers: send queue for " + this.url + " is full; dropped the oldest message.");
    }
  };

  Connection.prototype.flush = function () {
    while (this.queue.length > 0 && this.isOpen()) {
      this.socket.send(this.queue.shift());
    }
  };

  Connection.prototype.receive = function (data) {
    this.unanswered = 0;
    this.heartbeatPending = false; // Any frame shows the path is alive.
    if (data === HEARTBEAT_REPLY) return;
    startFrame(this);
    try {
      this.receiveFrame(data);
    } finally {
      endFrame(this);
    }
  };

  Connection.prototype.receiveFrame = function (data) {
    var commands;
    try {
      commands = JSON.parse(data, hypergen.reviver);
    } catch (error) {
      console.error("hypergen_consumers: frame from " + this.url + " could not be read:", error);
      emit("error", this.url, { code: "invalid_frame", message: String(error) });
      this.keepBookkeeping(data); // Its ack and position still count (see below).
      return;
    }
    if (!isDeliveryOnly(commands)) emit("message", this.url, { commands: commands });
    var bookkeeping = trailingDeliveryCommands(commands);
    var page = bookkeeping.length === 0 ? commands : commands.slice(0, commands.length - bookkeeping.length);
    this.framePage = page;
    try {
      applyFrom(this.url, page);
    } finally {
      // The frame's ack and position count even when one of its page commands threw: the
      // page got the frame, and sending it again could not make it apply.
      applyFrom(this.url, bookkeeping);
    }
  };

  Connection.prototype.keepBookkeeping = function (data) {
    // A frame hypergen's reviver refused (its page commands are lost either way) may still
    // end with the ack of a frame the page sent: without it, the page would re-send that
    // frame after every reconnect.
    var bookkeeping;
    try {
      bookkeeping = trailingDeliveryCommands(JSON.parse(data));
    } catch (error) {
      return; // Not JSON at all.
    }
    applyFrom(this.url, bookkeeping);
  };

  function applyFrom(url, commands) {
    // hypergen's commands, as a frame of the socket to url (ack and position need to know which).
    if (Array.isArray(commands) && commands.length === 0) return;
    applyingUrl = url;
    try {
      hypergen.applyCommands(commands);
    } finally {
      applyingUrl = null;
    }
  }

  Connection.prototype.close = function () {
    failPushes(this, "closed", "The page closed " + this.url + ".");
    this.closed = true;
    stopHeartbeat(this);
    clearTimeout(this.timer);
    this.timer = null;
    this.queue = [];
    if (this.socket !== null) {
      var socket = this.socket;
      this.socket = null;
      socket.onclose = null;
      socket.close(1000);
      emit("close", this.url, { code: 1000, reason: "closed by the page" });
    }
  };

  // --- Delivery guarantees (docs/guide.rst "Delivery guarantees"; docs/protocol.rst) ---
  // Down: each group frame ends with ["hypergen.websocket.position", p, k]: position p in
  // stream k (one stream per group the socket is replayed from; k left out for 0, its own
  // group). A reconnect asks for what came after each (?hypergen_position=p0 and
  // &hypergen_position_<k>=pk). Past the server's window it sends
  // ["hypergen.websocket.resync", {reload}]: the page fires hypergen:websocket:resync and
  // reloads unless reload is false or a listener calls preventDefault().
  // Up: each frame gets meta.id (1, 2, ...) on a socket id (?hypergen_socket=...); frames
  // stay until ["hypergen.websocket.ack", id] and are re-sent after a reconnect; the
  // server runs each id once.

  function randomSocketId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function initDelivery(connection) {
    connection.socketId = randomSocketId();
    connection.positions = {}; // Stream index -> last position; a stream not yet heard of is absent.
    connection.nextFrameId = 1;
    connection.unacknowledged = []; // [{id, text}] in the order sent.
    connection.layerRetries = {}; // Frame text -> how often it was sent again after layer_unavailable.
  }

  function resumeUrl(connection) {
    var url = connection.url + (connection.url.indexOf("?") === -1 ? "?" : "&");
    url += "hypergen_socket=" + connection.socketId;
    Object.keys(connection.positions).forEach(function (k) {
      var name = k === "0" ? "hypergen_position" : "hypergen_position_" + k;
      url += "&" + name + "=" + encodeURIComponent(connection.positions[k]);
    });
    return url;
  }

  function numberFrame(connection, text) {
    var frame;
    try {
      frame = JSON.parse(text);
    } catch (error) {
      return text; // Not ours to number; the server answers invalid_frame.
    }
    if (!frame || typeof frame !== "object" || !frame.meta || typeof frame.meta !== "object") return text;
    frame.meta.id = connection.nextFrameId++;
    var numbered = JSON.stringify(frame);
    connection.unacknowledged.push({ id: frame.meta.id, text: numbered });
    if (connection.unacknowledged.length > MAX_QUEUE) connection.unacknowledged.shift();
    return numbered;
  }

  var DELIVERY_COMMANDS = ["hypergen.websocket.position", "hypergen.websocket.ack"];

  function isDeliveryOnly(commands) {
    // An acknowledgement or a position alone is bookkeeping, not a message for the page.
    return Array.isArray(commands) && commands.length > 0 && commands.every(function (command) {
      return Array.isArray(command) && DELIVERY_COMMANDS.indexOf(command[0]) !== -1;
    });
  }

  function trailingDeliveryCommands(commands) {
    // The server ends a frame with its ack and position ("hypergen.websocket.ack" inside the
    // reply, "hypergen.websocket.position" after a group frame).
    if (!Array.isArray(commands)) return [];
    var start = commands.length;
    while (start > 0 && Array.isArray(commands[start - 1]) && DELIVERY_COMMANDS.indexOf(commands[start - 1][0]) !== -1) {
      start--;
    }
    return commands.slice(start);
  }

  function requeueUnacknowledged(connection) {
    // Everything not acknowledged, in order: sent frames whose answer may be lost come first,
    // then what was queued while down (also in the list). The server skips ids it ran.
    connection.queue = connection.unacknowledged.map(function (frame) { return frame.text; });
  }

  function acknowledge(id) {
    var connection = WEBSOCKETS[applyingUrl];
    if (!connection) return;
    connection.unacknowledged = connection.unacknowledged.filter(function (frame) { return frame.id > id; });
    settlePushes(connection, id);
  }

  var MAX_STREAMS = 64; // As the server's streams.MAX_STREAMS.
  var POSITION = /^(\d{1,15}-\d{1,10})?$/;

  function position(value, index) {
    var connection = WEBSOCKETS[applyingUrl];
    var k = index === undefined ? 0 : index;
    if (!connection || typeof value !== "string" || !POSITION.test(value)) return;
    if (typeof k !== "number" || k % 1 !== 0 || k < 0 || k >= MAX_STREAMS) return;
    connection.positions[k] = value;
  }

  function resync(detail) {
    var url = applyingUrl;
    var reload = !(detail && detail.reload === false);
    var event = new CustomEvent("hypergen:websocket:resync", { detail: { url: url, reload: reload }, cancelable: true });
    window.dispatchEvent(event);
    if (reload && !event.defaultPrevented) window.location.reload();
  }

  function open(url) {
    if (WEBSOCKETS[url]) return; // Opening one URL twice opens one socket.
    var connection = new Connection(url);
    WEBSOCKETS[url] = connection;
    updateOfflineClass();
    connection.connect();
  }

  function close(url) {
    var connection = WEBSOCKETS[url];
    if (!connection) return;
    delete WEBSOCKETS[url];
    connection.close();
    updateOfflineClass();
  }

  // The server's ["hypergen.websocket.error", {"code": ..., "message": ...}] command.
  function error(payload) {
    var connection = WEBSOCKETS[applyingUrl];
    if (connection) connection.frameErrors.push(payload || {});
    console.error("hypergen_consumers: server error from " + applyingUrl + ":", payload);
    emit("error", applyingUrl, payload || {});
    if (debugOverlayWanted()) showErrorOverlay(applyingUrl, payload || {});
    if (payload && payload.code === "layer_unavailable" && payload.retry === true) {
      if (sendAgainLater(applyingUrl, payload.id) && connection) connection.frameRetried = payload.id;
    }
  }

  // The server refused a frame before running it: its handler answers the group and the
  // channel layer (Redis) is down. The frame is acknowledged (done, under its id), so it is
  // sent again as a new frame, with a new id, after a bounded backoff (1 s, 2 s, 4 s, ...
  // 15 s at most, 10 tries); it runs once when the layer is back. A reconnect meanwhile
  // changes nothing: the copy waits for its timer.
  var LAYER_RETRY = { BASE_DELAY_MS: 1000, MAX_DELAY_MS: 15000, TRIES: 10 };

  function sendAgainLater(url, id) {
    var connection = WEBSOCKETS[url];
    if (!connection || typeof id !== "number") return false;
    var frame = connection.unacknowledged.filter(function (sent) { return sent.id === id; })[0];
    if (!frame) return false;
    var tries = (connection.layerRetries[frame.text] || 0) + 1;
    if (tries > LAYER_RETRY.TRIES) return false; // Given up: the error event above was the last word.
    var text = frame.text;
    setTimeout(function () {
      delete connection.layerRetries[text];
      if (connection.closed) return;
      var again = JSON.parse(text);
      delete again.meta.id; // numberFrame gives it a new one.
      var renumbered = JSON.stringify(again);
      connection.send(renumbered);
      var latest = connection.unacknowledged[connection.unacknowledged.length - 1];
      if (latest) connection.layerRetries[latest.text] = tries;
      adoptRetriedPush(connection, id, connection.nextFrameId - 1);
    }, Math.min(LAYER_RETRY.MAX_DELAY_MS, LAYER_RETRY.BASE_DELAY_MS * Math.pow(2, tries - 1)));
    return true;
  }

  // --- The dev overlay (DEBUG = True only) ----------------------------------------------
  // The server marks the client's script tag with data-hypergen-consumers-debug when Django's
  // DEBUG is on (client_script.py); only then is an error frame also shown on the page, as a
  // dismissible panel (x or Escape): the code, the message, pydantic's errors, the traceback.
  // Everything is set as text, never as HTML: a message may hold what a client sent.

  var OVERLAY_ID = "hypergen-consumers-overlay";
  var OVERLAY_MAX_ENTRIES = 20;

  function debugOverlayWanted() {
    return document.querySelector("script[data-hypergen-consumers-debug]") !== null;
  }

  function element(tag, cssText, text) {
    var node = document.createElement(tag);
    if (cssText) node.style.cssText = cssText;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function dismissErrorOverlay() {
    var overlay = document.getElementById(OVERLAY_ID);
    if (overlay) overlay.remove();
  }

  function errorOverlay() {
    var overlay = document.getElementById(OVERLAY_ID);
    if (overlay) return overlay.querySelector("ol");
    overlay = element("div", "position:fixed;right:1rem;bottom:1rem;z-index:2147483647;width:min(34rem,calc(100vw - 2rem));" +
      "max-height:45vh;overflow:auto;background:#1e1e24;color:#f3f3f5;border-left:4px solid #e5484d;border-radius:6px;" +
      "box-shadow:0 8px 30px rgba(0,0,0,.35);font:13px/1.45 system-ui,sans-serif;padding:.75rem 1rem;text-align:left");
    overlay.id = OVERLAY_ID;
    overlay.setAttribute("role", "alertdialog");
    overlay.setAttribute("aria-label", "Websocket errors (DEBUG)");
    var close = element("button", "float:right;background:none;border:0;color:inherit;font-size:20px;line-height:1;cursor:pointer", "\u00d7");
    close.className = "hypergen-consumers-overlay-close";
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", dismissErrorOverlay);
    overlay.appendChild(close);
    overlay.appendChild(element("strong", "display:block;margin-bottom:.25rem", "Websocket error"));
    overlay.appendChild(element("ol", "margin:0;padding:0;list-style:none"));
    overlay.appendChild(element("small", "display:block;opacity:.6;margin-top:.5rem", "Shown because DEBUG = True. Esc or \u00d7 dismisses."));
    document.body.appendChild(overlay);
    return overlay.querySelector("ol");
  }

  function showErrorOverlay(url, payload) {
    if (!document.body) return;
    var list = errorOverlay();
    var entry = element("li", "border-top:1px solid #3a3a44;padding:.5rem 0");
    entry.className = "hypergen-consumers-overlay-entry";
    var code = element("code", "color:#ff8589;font-weight:600", String(payload.code || "error"));
    code.className = "hypergen-consumers-overlay-code";
    entry.appendChild(code);
    entry.appendChild(element("span", "opacity:.6;margin-left:.5rem;word-break:break-all", String(url || "")));
    entry.appendChild(element("div", "margin-top:.25rem;white-space:pre-wrap", String(payload.message || "")));
    if (Array.isArray(payload.errors)) {
      var errors = element("ul", "margin:.25rem 0 0 1rem;padding:0");
      payload.errors.forEach(function (item) {
        var where = Array.isArray(item && item.loc) ? item.loc.join(".") : "";
        errors.appendChild(element("li", "", (where ? where + ": " : "") + String(item && item.msg)));
      });
      entry.appendChild(errors);
    }
    if (typeof payload.traceback === "string") {
      entry.appendChild(element("pre", "margin:.25rem 0 0;max-height:14rem;overflow:auto;background:#111116;padding:.5rem;font-size:12px", payload.traceback));
    }
    list.insertBefore(entry, list.firstChild);
    while (list.children.length > OVERLAY_MAX_ENTRIES) list.removeChild(list.lastChild);
  }

  document.addEventListener("keydown", function (event) {
    if (event.key === "Escape") dismissErrorOverlay();
  });
  // --- Replies for the page's own code (hypergen.websocket.push) -----------------------
  // A push is a frame like callback()'s ({"args": [handler, ...args], "meta": {}}), sent
  // through the same queue and numbered the same way (meta.id), so it is re-sent after a
  // reconnect and run once. The server ends its answer to that frame with
  // ["hypergen.websocket.ack", id]: in the frame that carries the reply, or in the error
  // frame, after the error command. So the frame that holds the ack says how it went: an
  // error command before the ack rejects, none resolves (its reply is applied by then).
  // A frame refused before it got an id's claim (too large, not JSON, the per-socket rate
  // limit) gets an error without an ack; the next ack passes over it, and it rejects with
  // that error.

  function initPushes(connection) {
    connection.pushes = {}; // Frame id -> {id, resolve, reject, timer, done}.
    connection.retryingPushes = {}; // Old frame id -> push, while its frame waits to be sent again.
    connection.frameRetried = null; // The id the frame being applied refused for a retry.
    connection.frameErrors = []; // Error commands of the frame being applied.
    connection.framePage = [];
    connection.strayErrors = []; // Errors of frames that carried no ack, oldest first.
  }

  function startFrame(connection) {
    connection.frameErrors = [];
    connection.frameRetried = null;
    connection.framePage = [];
  }

  function endFrame(connection) {
    if (connection.frameErrors.length > 0) {
      connection.strayErrors = connection.strayErrors.concat(connection.frameErrors).slice(-MAX_QUEUE);
    }
    connection.frameErrors = [];
    connection.framePage = [];
    connection.frameRetried = null;
  }

  function settlePushes(connection, id) {
    var errors = connection.frameErrors;
    connection.frameErrors = []; // Attributed to this frame: not stray.
    Object.keys(connection.pushes).map(Number).sort(function (a, b) { return a - b; }).forEach(function (pushed) {
      if (pushed > id) return;
      var push = connection.pushes[pushed];
      delete connection.pushes[pushed];
      if (pushed === id && connection.frameRetried === id) {
        // Refused while the channel layer is down, and sent again later as a new frame
        // (sendAgainLater): the promise follows that frame, and its timeout keeps running.
        connection.retryingPushes[id] = push;
        return;
      }
      push.done = true;
      clearTimeout(push.timer);
      if (pushed === id) {
        if (errors.length > 0) push.reject(pushError(errors[errors.length - 1]));
        else push.resolve(connection.framePage);
      } else {
        // Passed over by a later ack: the server refused it before running it.
        var refused = connection.strayErrors.shift();
        push.reject(pushError(refused || { code: "refused", message: "The server did not run this frame." }));
      }
    });
    connection.strayErrors = [];
  }

  function pushError(payload) {
    var failure = { code: payload.code, message: payload.message };
    if (payload.errors !== undefined) failure.errors = payload.errors;
    return failure;
  }

  function adoptRetriedPush(connection, oldId, newId) {
    var push = connection.retryingPushes[oldId];
    delete connection.retryingPushes[oldId];
    if (!push || push.done) return;
    push.id = newId;
    connection.pushes[newId] = push;
  }

  function failPushes(connection, code, message) {
    [connection.pushes, connection.retryingPushes].forEach(function (pushes) {
      Object.keys(pushes).forEach(function (id) {
        var push = pushes[id];
        delete pushes[id];
        push.done = true;
        clearTimeout(push.timer);
        push.reject({ code: code, message: message });
      });
    });
  }

  function pushWith(options, url, handler) {
    var args = Array.prototype.slice.call(arguments, 2);
    var timeout = options && options.timeout;
    return new Promise(function (resolve, reject) {
      var connection = WEBSOCKETS[url];
      if (!connection) {
        reject({ code: "not_open", message: url + " is not open: open it first (hypergen.websocket.open(url))." });
        return;
      }
      var text;
      try {
        text = JSON.stringify({ args: args, meta: {} });
      } catch (problem) {
        reject({ code: "invalid_frame", message: "The arguments cannot be sent as JSON: " + problem });
        return;
      }
      connection.send(text);
      var id = connection.nextFrameId - 1; // numberFrame just gave the frame this id.
      var push = { id: id, resolve: resolve, reject: reject, timer: null, done: false };
      connection.pushes[id] = push;
      if (typeof timeout === "number" && timeout >= 0) {
        push.timer = setTimeout(function () {
          if (push.done) return;
          push.done = true;
          if (connection.pushes[push.id] === push) delete connection.pushes[push.id];
          if (connection.retryingPushes[push.id] === push) delete connection.retryingPushes[push.id];
          // The frame stays queued: it may still run, once, after this rejection.
          reject({ code: "timeout", message: "No answer from " + url + " within " + timeout + " ms; the frame may still run once." });
        }, timeout);
      }
    });
  }

  function push(url, handler) {
    return pushWith.apply(null, [{}].concat(Array.prototype.slice.call(arguments)));
  }

  // ["hypergen.websocket.notice", {"text": ..., "from": ...}]: a notice an operator sent to the
  // page's group from the dashboard. Fires hypergen:websocket:notice (cancelable); unless a
  // listener calls preventDefault(), shows it as a small dismissible note (set as text).
  function notice(payload) {
    var detail = { url: applyingUrl, text: String((payload && payload.text) || ""), from: String((payload && payload.from) || "") };
    var event = new CustomEvent("hypergen:websocket:notice", { detail: detail, cancelable: true });
    window.dispatchEvent(event);
    if (event.defaultPrevented || !document.body) return;
    var note = element("div", "position:fixed;left:50%;top:1rem;transform:translateX(-50%);z-index:2147483646;max-width:min(36rem,calc(100vw - 2rem));" +
      "background:#1d2129;color:#fff;border-radius:6px;padding:.6rem 2.2rem .6rem 1rem;box-shadow:0 8px 30px rgba(0,0,0,.3);font:14px/1.4 system-ui,sans-serif");
    note.className = "hypergen-websocket-notice";
    note.appendChild(element("span", "", detail.text));
    if (detail.from) note.appendChild(element("small", "display:block;opacity:.65", "from " + detail.from));
    var close = element("button", "position:absolute;right:.5rem;top:.35rem;background:none;border:0;color:inherit;font-size:18px;cursor:pointer", "\u00d7");
    close.setAttribute("aria-label", "Dismiss");
    close.addEventListener("click", function () { note.remove(); });
    note.appendChild(close);
    document.body.appendChild(note);
  }

  function reconnectAll() {
    Object.keys(WEBSOCKETS).forEach(function (url) {
      WEBSOCKETS[url].reconnectNow();
    });
  }

  // --- Heartbeat (docs/protocol.rst "Heartbeat") ------------------------------------
  // Every half heartbeat an open socket sends HEARTBEAT_FRAME; the server answers
  // HEARTBEAT_REPLY at once. Each beat needs something since the last one (the handshake's
  // answer, or any frame): otherwise the path is dead even though the socket looks open, and
  // the socket is given up now. Beating twice per heartbeat is what keeps a dead path's
  // detection within one heartbeat, whatever its phase (once per heartbeat, as Phoenix does,
  // takes one to two). A handshake gets two whole heartbeats (a busy server may take a while
  // to answer a thousand reconnects) before a socket still connecting is given up too.

  var HEARTBEAT_MS = 30000; // As Phoenix; window.hypergen_consumers_heartbeat_ms overrides it.
  var HEARTBEAT_FRAME = '{"args":[],"meta":{"heartbeat":true}}';
  var HEARTBEAT_REPLY = '[["hypergen.websocket.heartbeat"]]';

  function heartbeatInterval() {
    var configured = window.hypergen_consumers_heartbeat_ms;
    return typeof configured === "number" && configured >= 0 ? configured : HEARTBEAT_MS;
  }

  function startHeartbeat(connection, socket) {
    stopHeartbeat(connection);
    var interval = heartbeatInterval();
    if (!(interval > 0)) return;
    connection.heartbeatPending = false;
    var connectingBeats = 0;
    connection.heartbeatTimer = setInterval(function () {
      if (connection.socket !== socket) return stopHeartbeat(connection);
      if (socket.readyState === WebSocket.CONNECTING) {
        if (++connectingBeats >= 4) giveUp(connection, "heartbeat timeout");
        return;
      }
      if (connection.heartbeatPending) return giveUp(connection, "heartbeat timeout");
      connection.heartbeatPending = true;
      socket.send(HEARTBEAT_FRAME);
    }, interval / 2);
  }

  // The server answers the heartbeat every half of it while one of this page's handlers runs
  // (it handles one frame at a time, so a heartbeat would wait behind a long handler).
  function withHeartbeat(url) {
    var interval = heartbeatInterval();
    if (!(interval > 0)) return url;
    return url + (url.indexOf("?") === -1 ? "?" : "&") + "hypergen_heartbeat=" + Math.round(interval);
  }

  function stopHeartbeat(connection) {
    clearInterval(connection.heartbeatTimer);
    connection.heartbeatTimer = null;
    connection.heartbeatPending = false;
  }

  // The path is dead but the socket does not know: a close handshake would wait on it, so
  // the socket is let go (its events ignored) and the connection goes on without it.
  function giveUp(connection, reason) {
    var socket = connection.socket;
    if (socket === null) return;
    socket.onopen = socket.onmessage = socket.onerror = socket.onclose = null;
    try {
      socket.close(4000, reason);
    } catch (ignored) {}
    connection.ended(socket, 1006, reason);
  }

  window.addEventListener("offline", function () {
    Object.keys(WEBSOCKETS).forEach(function (url) {
      giveUp(WEBSOCKETS[url], "browser offline");
    });
  });
  window.addEventListener("online", reconnectAll);
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible") reconnectAll();
  });

  var previous = hypergen.websocket;
  hypergen.websocket = {
    isHypergenConsumersClient: true,
    WEBSOCKETS: WEBSOCKETS,
    open: open,
    close: close,
    error: error,
    backoff: BACKOFF,
    heartbeat: function () {}, // The server's heartbeat reply, should it ever be applied as a command.
    backoffCeiling: backoffCeiling,
    ack: acknowledge,
    position: position,
    resync: resync,
    dismissErrorOverlay: dismissErrorOverlay,
    push: push,
    pushWith: pushWith,
    notice: notice,
  };

  // Sockets that hypergen's own client opened before this script loaded move over.
  if (previous && previous.WEBSOCKETS) {
    Object.keys(previous.WEBSOCKETS).forEach(function (url) {
      try {
        previous.close(url);
      } catch (ignored) {}
      open(url);
    });
  }
})();
