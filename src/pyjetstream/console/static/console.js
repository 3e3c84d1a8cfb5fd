// pyjetstream console: live updates over server-sent events. Progressive enhancement only:
// every page works without this file (a <noscript> refresh takes its place).
// It never evaluates markup from the server as script: fragments are parsed with DOMParser
// (whose scripts never run) and the server's CSP allows no inline script anyway.
(function () {
  "use strict";
  var live = document.querySelector("[data-live-src]");
  var status = document.getElementById("live-status");

  function setStatus(state, text) {
    if (!status) { return; }
    status.setAttribute("data-state", state);
    status.textContent = text;
  }

  function openDetails(root) {
    var open = [];
    root.querySelectorAll("details[open][id]").forEach(function (d) { open.push(d.id); });
    return open;
  }

  function swap(html) {
    var open = openDetails(live);
    var doc = new DOMParser().parseFromString("<!doctype html><body>" + html, "text/html");
    var nodes = Array.prototype.slice.call(doc.body.childNodes);
    live.replaceChildren.apply(live, nodes);
    open.forEach(function (id) {
      var d = document.getElementById(id);
      if (d && d.tagName === "DETAILS") { d.open = true; }
    });
    live.setAttribute("data-updated", String(Date.now()));
  }

  if (!live || !window.EventSource) { return; }
  var source = new EventSource("/live?src=" + encodeURIComponent(live.getAttribute("data-live-src")));
  source.addEventListener("open", function () { setStatus("on", "live"); });
  source.addEventListener("error", function () { setStatus("off", "reconnecting…"); });
  source.addEventListener("fragment", function (ev) {
    setStatus("on", "live");
    swap(ev.data);
  });
  source.addEventListener("login", function () {
    source.close();
    window.location.reload();
  });
  window.addEventListener("pagehide", function () { source.close(); });
}());
