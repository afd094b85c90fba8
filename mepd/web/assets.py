"""The dashboard's only static files: one style sheet and the live-tail script (no CDN, no framework).

Kept as Python strings so they ship inside the package and the export writes
the same bytes the server sends.
"""

from __future__ import annotations

from typing import Final

WEBLOG_CSS_SCOPE: Final = ".weblog"

CSS: Final = """
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2330;background:#f6f7f9}
header{display:flex;flex-wrap:wrap;align-items:center;gap:.3em 1.2em;padding:.6em 1em;background:#1d2d44;color:#fff}
header a{color:#fff;text-decoration:none}header .site{font-weight:700;font-size:1.1em}
nav{display:flex;gap:1em;flex-wrap:wrap}nav a{opacity:.85}nav a:hover{opacity:1;text-decoration:underline}
main{padding:.5em 1em 2em;max-width:1400px;margin:0 auto}
h1{font-size:1.4em;margin:.4em 0}h2{font-size:1.15em;margin:1.2em 0 .4em}h3{font-size:1em;margin:.8em 0 .3em}
footer{color:#778;font-size:.85em;padding:1em;text-align:center}
a{color:#1f5fa8}
.muted{color:#6b7280}.ok{color:#15803d}.bad{color:#b91c1c}
.badge{display:inline-block;padding:0 .45em;border-radius:.6em;font-size:.85em;background:#e5e7eb;color:#374151}
.badge.ok,.badge.up{background:#dcfce7;color:#166534}
.badge.bad,.badge.critical,.badge.firing{background:#fee2e2;color:#991b1b}
.badge.warn,.badge.warning,.badge.acknowledged{background:#fef3c7;color:#92400e}
.badge.info,.badge.resolved{background:#dbeafe;color:#1e40af}
section.alerting{border-left:4px solid #b91c1c;padding-left:.7em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse}
table.list{width:100%;background:#fff}
table.list th,table.list td{padding:.3em .6em;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
table.list th{background:#eef1f5;font-weight:600;white-space:nowrap}
table.info th{text-align:left;padding:.15em 1em .15em 0;color:#4b5563;font-weight:600}
table.info td{padding:.15em 0}
#stats td{white-space:nowrap}
td.msg{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,monospace;font-size:.9em}
tr.sev-emerg td,tr.sev-alert td,tr.sev-crit td,tr.sev-err td{background:#fff1f2}
tr.sev-warning td{background:#fffbeb}
.cards{display:flex;flex-wrap:wrap;gap:.8em}
.card{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:.4em;max-width:100%}
.card img{display:block}
img{max-width:100%;height:auto}
.target{margin-bottom:1em}
form.inline{display:inline-flex;flex-wrap:wrap;gap:.4em;align-items:center;margin:.2em .6em .2em 0}
form.filters{display:flex;flex-wrap:wrap;gap:.5em 1em;align-items:flex-end;background:#fff;padding:.6em;
 border:1px solid #e5e7eb;border-radius:6px}
label{display:flex;flex-direction:column;font-size:.85em;color:#4b5563}
input,select,button{font:inherit;padding:.25em .4em}
button{background:#1f5fa8;color:#fff;border:0;border-radius:4px;padding:.35em .9em;cursor:pointer}
pre{white-space:pre-wrap;word-break:break-word;background:#fff;border:1px solid #e5e7eb;padding:.5em}
.notice{background:#dcfce7;padding:.4em .7em;border-radius:4px}
@media (max-width:640px){main{padding:.3em .5em}table.list th,table.list td{padding:.25em .35em}
 .card{flex:1 1 100%}}
"""

LIVE_JS: Final = """
// Live tail of the logs page: records arrive as server-sent events and are put on top of the table.
(function () {
  "use strict";
  var table = document.getElementById("live");
  var state = document.getElementById("live-state");
  if (!table || !window.EventSource) { return; }
  var body = table.tBodies[0];
  var fleet = table.hasAttribute("data-node");  // a central: each record's node is shown
  var source = new EventSource(table.getAttribute("data-stream"));
  function two(n) { return (n < 10 ? "0" : "") + n; }
  function stamp(text) {
    var d = new Date(text);
    if (isNaN(d.getTime())) { return text || ""; }
    return d.getFullYear() + "-" + two(d.getMonth() + 1) + "-" + two(d.getDate()) + " " +
      two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }
  source.onopen = function () { state.textContent = "(live)"; };
  source.onerror = function () { state.textContent = "(reconnecting)"; };
  source.addEventListener("record", function (event) {
    var r = JSON.parse(event.data);
    var row = document.createElement("tr");
    row.className = "sev-" + (r.severity || "");
    var values = [stamp(r.ts), r.host, r.app, r.severity, r.message];
    if (fleet) { values.splice(1, 0, r.node); }
    values.forEach(function (value, i) {
      var cell = document.createElement("td");
      if (i === values.length - 1) { cell.className = "msg"; }
      cell.textContent = value === null || value === undefined ? "" : String(value);
      row.appendChild(cell);
    });
    body.insertBefore(row, body.firstChild);
    while (body.rows.length > 500) { body.deleteRow(body.rows.length - 1); }
  });
})();
"""

STATIC: Final = {"mepd.css": ("text/css", CSS), "live.js": ("text/javascript", LIVE_JS)}
