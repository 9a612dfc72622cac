// Notifications are shown once per occurrence: the stream may send one again after a
// reconnect, so each key seen in this tab is remembered and a repeat is not swapped in.
(function () {
  "use strict";
  var seen = {};
  try { seen = JSON.parse(sessionStorage.getItem("cf-notes") || "{}"); } catch (e) { seen = {}; }
  document.addEventListener("htmx:sseBeforeMessage", function (event) {
    if (event.detail.type !== "note") { return; }
    var match = /data-key="([^"]*)"/.exec(event.detail.data);
    if (!match) { return; }
    if (seen[match[1]]) { event.preventDefault(); return; }
    seen[match[1]] = true;
    try { sessionStorage.setItem("cf-notes", JSON.stringify(seen)); } catch (e) { /* full */ }
  });
})();
