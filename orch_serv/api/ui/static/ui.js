// orch_serv dashboard: live updates by polling a small HTML fragment of the same page.
// An element with data-live-url is refreshed every data-interval ms (3000 by default) while
// the "live updates" box is ticked and the tab is visible; a fragment whose root says
// data-done="true" (a finished run) ends the polling. A 401 (session ended) reloads the
// page, which then goes to the login page.
(function () {
  "use strict";
  function start(box) {
    var url = box.getAttribute("data-live-url");
    var every = parseInt(box.getAttribute("data-interval") || "3000", 10);
    var toggle = document.getElementById("live-toggle");
    var busy = false;
    var timer = null;
    function tick() {
      if (busy || document.hidden || (toggle && !toggle.checked)) { return; }
      busy = true;
      fetch(url, { credentials: "same-origin", headers: { "Accept": "text/html" } })
        .then(function (response) {
          if (response.status === 401) { window.location.reload(); return null; }
          return response.ok ? response.text() : null;
        })
        .then(function (html) {
          if (html === null) { return; }
          box.innerHTML = html;
          box.setAttribute("data-updated", new Date().toISOString());
          var root = box.firstElementChild;
          if (root && root.getAttribute("data-done") === "true") {
            clearInterval(timer);
            if (toggle) { toggle.checked = false; toggle.disabled = true; }
          }
        })
        .catch(function () { /* a network blip: try again at the next tick */ })
        .then(function () { busy = false; });
    }
    timer = setInterval(tick, every);
  }
  document.addEventListener("DOMContentLoaded", function () {
    var boxes = document.querySelectorAll("[data-live-url]");
    for (var i = 0; i < boxes.length; i++) { start(boxes[i]); }
  });
})();
