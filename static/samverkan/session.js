/* Session rules (docs/adr/0016-lockout-sessions-and-headers.md).
 *
 * Reads <meta name="samverkan-session"> (present on signed-in pages) and warns
 * data-warning-seconds before the idle timeout, with a button that posts to the
 * keep-alive URL (the request renews the session on the server), and before the
 * absolute end of the session (which nothing extends). At the end it goes to the
 * login page. Each page says how much idle time the session has left after its own
 * request (the server writes a renewal only when it moves the end by more than a
 * minute or so): the tabs share the latest idle end through localStorage. No inline
 * script: CSP.
 */
(function () {
  "use strict";
  if (window.samverkanSession) { return; }
  var STORE = "samverkan.session.idleEnd";
  var timers = [];
  var dialog = null;
  var config = null;

  function read() {
    var meta = document.querySelector('meta[name="samverkan-session"]');
    if (!meta) { return null; }
    var d = meta.dataset;
    return {
      idle: Number(d.idleSeconds) * 1000,
      warning: Number(d.warningSeconds) * 1000,
      endsAt: Number(d.endsAt),
      keepAliveUrl: d.keepAliveUrl,
      loginUrl: d.loginUrl,
      csrf: d.csrfToken,
      textIdle: d.textIdle,
      textEnd: d.textEnd,
      textStay: d.textStay,
      textOk: d.textOk
    };
  }

  function idleEnd() {
    var stored = 0;
    try { stored = Number(window.localStorage.getItem(STORE)) || 0; } catch (e) { stored = 0; }
    return Math.max(stored, window.samverkanSession.idleEnd || 0);
  }

  function touch(idle) {
    var end = Date.now() + idle;
    window.samverkanSession.idleEnd = end;
    try {
      if (end > (Number(window.localStorage.getItem(STORE)) || 0)) {
        window.localStorage.setItem(STORE, String(end));
      }
    } catch (e) { /* private mode */ }
  }

  function clear() {
    timers.forEach(function (id) { window.clearTimeout(id); });
    timers = [];
  }

  function close() {
    if (dialog) { dialog.remove(); dialog = null; }
  }

  function toLogin() {
    var next = window.location.pathname + window.location.search;
    window.location.assign(config.loginUrl + "?next=" + encodeURIComponent(next));
  }

  function show(text, buttonText, onClick, kind) {
    close();
    dialog = document.createElement("div");
    dialog.className = "samverkan-session-warning";
    dialog.setAttribute("role", "alertdialog");
    dialog.setAttribute("aria-live", "assertive");
    dialog.dataset.sessionWarning = kind;
    var message = document.createElement("p");
    message.textContent = text;
    var button = document.createElement("button");
    button.type = "button";
    button.className = "mdc-button mdc-button--raised";
    button.textContent = buttonText;
    button.addEventListener("click", onClick);
    dialog.appendChild(message);
    dialog.appendChild(button);
    document.body.appendChild(dialog);
    button.focus();
  }

  function stay() {
    var body = new FormData();
    fetch(config.keepAliveUrl, {
      method: "POST",
      body: body,
      credentials: "same-origin",
      headers: { "X-CSRFToken": config.csrf, "Accept": "application/json" }
    }).then(function (response) {
      var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
      if (!response.ok || response.redirected || !json) { throw new Error("signed out"); }
      return response.json();
    }).then(function (answer) {
      close();
      touch(Number(answer.idle_seconds) * 1000);
      schedule();
    }).catch(toLogin);
  }

  function schedule() {
    clear();
    config = read();
    if (!config) { close(); return; }
    var now = Date.now();
    var end = idleEnd();
    if (end <= config.endsAt) {
      timers.push(window.setTimeout(function () {
        if (idleEnd() > end) { schedule(); return; }  // another tab
        show(config.textIdle, config.textStay, stay, "idle");
      }, Math.max(0, end - config.warning - now)));
      timers.push(window.setTimeout(function () {
        if (idleEnd() > end) { close(); schedule(); return; }
        toLogin();
      }, Math.max(0, end - now)));
    } else {
      timers.push(window.setTimeout(function () {
        show(config.textEnd, config.textOk, close, "end");
      }, Math.max(0, config.endsAt - config.warning - now)));
      timers.push(window.setTimeout(toLogin, Math.max(0, config.endsAt - now)));
    }
  }

  window.samverkanSession = { idleEnd: 0, schedule: schedule };
  function loaded() {
    var page = read();
    if (page) { touch(page.idle); }
    schedule();
  }
  document.addEventListener("turbo:load", loaded);
  window.addEventListener("storage", function (event) {
    if (event.key === STORE && config) { close(); schedule(); }
  });
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", loaded);
  } else {
    loaded();
  }
}());
