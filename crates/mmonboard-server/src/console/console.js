// The console's only script: live regions refreshed when the log moves, and the sync window's countdown.
// Without it every page still works; it only saves pressing reload.
(function () {
  "use strict";

  // Replaces each live region whose key changed with the same region of a fresh copy of the page.
  var refreshing = false;
  var again = false;
  function refresh() {
    if (refreshing) { again = true; return; }
    refreshing = true;
    fetch(window.location.href, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (html === null) { return; }
        var fresh = new DOMParser().parseFromString(html, "text/html");
        document.querySelectorAll("[data-live-region]").forEach(function (region) {
          var next = region.id && fresh.getElementById(region.id);
          if (next && next.getAttribute("data-key") !== region.getAttribute("data-key")) {
            var replacement = document.importNode(next, true);
            keepTyped(region, replacement);
            region.replaceWith(replacement);
          }
        });
        startCountdowns();
      })
      .catch(function () { /* the next change tries again */ })
      .finally(function () {
        refreshing = false;
        if (again) { again = false; refresh(); }
      });
  }

  // What the person typed into a field that the fresh region has too stays typed (hidden fields take the
  // fresh values: they say which version of the page a form was sent from).
  function keepTyped(old, replacement) {
    old.querySelectorAll("input[id], select[id], textarea[id]").forEach(function (field) {
      if (field.type === "hidden") { return; }
      var same = replacement.querySelector("#" + CSS.escape(field.id));
      if (same && same.tagName === field.tagName && !same.readOnly) { same.value = field.value; }
    });
  }

  // Counts a window down from the server's time at rendering (data-now) to its end (data-ends).
  var timer = null;
  function startCountdowns() {
    var loaded = Date.now();
    var countdowns = Array.prototype.slice.call(document.querySelectorAll(".countdown[data-ends]"));
    countdowns.forEach(function (element) {
      element.dataset.left = String(Date.parse(element.dataset.ends) - Date.parse(element.dataset.now));
    });
    if (timer) { clearInterval(timer); }
    if (countdowns.length === 0) { return; }
    function tick() {
      var elapsed = Date.now() - loaded;
      countdowns.forEach(function (element) {
        var left = Math.max(0, Math.floor((Number(element.dataset.left) - elapsed) / 1000));
        element.textContent = Math.floor(left / 60) + ":" + String(left % 60).padStart(2, "0");
      });
    }
    tick();
    timer = setInterval(tick, 1000);
  }

  function start() {
    startCountdowns();
    var live = document.body.getAttribute("data-live");
    if (live && window.EventSource) {
      var source = new EventSource(live);
      source.addEventListener("change", refresh);
      // Exposed so that a page can be made stale on purpose (the browser tests do).
      window.mmonboardLive = source;
    }
    // Sign-in links may carry the token after '#token=': fill it in, and take it out of the address bar.
    var match = /^#token=(.+)$/.exec(window.location.hash);
    var field = document.getElementById("token");
    if (match && field) {
      field.value = decodeURIComponent(match[1]);
      history.replaceState(null, "", window.location.pathname + window.location.search);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
