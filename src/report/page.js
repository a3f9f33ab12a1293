// The status page's search: finds every backed-up name whose base name
// holds what is typed (case-insensitive), or with a `/` whose path from the
// watched folder holds it, and names the discs holding it. Names are only
// ever set as text.
(function () {
  "use strict";
  var LIMIT = 200;
  var sets = [];
  var errors = document.getElementById("errors");
  window.addEventListener("error", function (e) {
    if (errors) {
      errors.hidden = false;
      errors.textContent += "script error: " + e.message + "\n";
    }
  });

  function load() {
    var nodes = document.querySelectorAll("script.idx");
    for (var i = 0; i < nodes.length; i++) {
      var n = nodes[i];
      sets.push({
        name: n.getAttribute("data-name") || "",
        anchor: n.getAttribute("data-anchor") || "",
        lost: (n.getAttribute("data-lost") || "").split(",").filter(Boolean),
        ix: JSON.parse(n.textContent),
        ready: false
      });
    }
  }

  // Lower-cased names, line starts and run ends, once per set.
  function prepare(s) {
    if (s.ready) return;
    var ix = s.ix, i, c;
    s.lower = ix.files > 0 ? ix.n.toLowerCase() : "";
    s.names = ix.files > 0 ? ix.n.split("\n") : [];
    s.folders = ix.f.split("\n");
    s.folderLower = s.folders.map(function (f) { return f.toLowerCase(); });
    var starts = [0], p = -1;
    while ((p = s.lower.indexOf("\n", p + 1)) !== -1) starts.push(p + 1);
    s.starts = starts;
    s.gEnd = []; s.gF = [];
    for (i = 0, c = 0; i + 1 < ix.g.length; i += 2) { c += ix.g[i + 1]; s.gEnd.push(c); s.gF.push(ix.g[i]); }
    s.dEnd = []; s.dV = [];
    for (i = 0, c = 0; i + 1 < ix.d.length; i += 2) { c += ix.d[i + 1]; s.dEnd.push(c); s.dV.push(ix.d[i]); }
    s.ready = true;
  }

  // The run holding name k: the first whose end is past k.
  function run(ends, k) {
    var lo = 0, hi = ends.length - 1;
    while (lo < hi) { var m = (lo + hi) >> 1; if (ends[m] > k) hi = m; else lo = m + 1; }
    return lo;
  }

  // The line holding offset off: the last start at or before it.
  function lineOf(starts, off) {
    var lo = 0, hi = starts.length - 1;
    while (lo < hi) { var m = (lo + hi + 1) >> 1; if (starts[m] <= off) lo = m; else hi = m - 1; }
    return lo;
  }

  function path(s, k) {
    var f = s.folders[s.gF[run(s.gEnd, k)]] || "";
    return (f ? "/" + f : "") + "/" + s.names[k];
  }

  function discsOf(s, k) {
    return (s.dV[run(s.dEnd, k)] || "").split(",").filter(Boolean);
  }

  function search(raw) {
    var q = raw.trim().toLowerCase();
    var hits = [], total = 0;
    if (q === "") return { hits: hits, total: 0 };
    var slash = q.lastIndexOf("/");
    var tail = q.slice(slash + 1);
    var take = function (s, k) {
      total++;
      if (hits.length < LIMIT) hits.push({ set: s, k: k });
    };
    var head = q.slice(0, slash + 1);
    sets.forEach(function (s) {
      prepare(s);
      if (s.ix.files === 0) return;
      if (slash !== -1) {
        // A path: a name's path holds it either within its folder part
        // ("/a/b/") or across into the name, when its last "/" is the
        // folder's end and the name starts with the rest.
        var start = 0;
        for (var r = 0; r < s.gEnd.length; r++) {
          var f = s.folderLower[s.gF[r]] || "";
          var fl = f ? "/" + f + "/" : "/";
          var all = fl.indexOf(q) !== -1;
          var into = !all && tail !== "" && fl.slice(-head.length) === head;
          if (all || into) {
            for (var k = start; k < s.gEnd[r]; k++) {
              if (all || s.names[k].toLowerCase().indexOf(tail) === 0) take(s, k);
            }
          }
          start = s.gEnd[r];
        }
        return;
      }
      var L = s.lower, p = -1;
      while ((p = L.indexOf(q, p + 1)) !== -1) {
        var line = lineOf(s.starts, p);
        take(s, line);
        // One hit per name: go on from the next line.
        p = line + 1 < s.starts.length ? s.starts[line + 1] - 1 : L.length;
      }
    });
    return { hits: hits, total: total };
  }

  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function show(raw) {
    var out = document.getElementById("results");
    var summary = document.getElementById("summary");
    var body = out.querySelector("tbody");
    while (body.firstChild) body.removeChild(body.firstChild);
    var t0 = Date.now();
    var r = search(raw);
    summary.setAttribute("data-ms", String(Date.now() - t0));
    out.hidden = r.hits.length === 0;
    if (raw.trim() === "") { summary.textContent = ""; return; }
    summary.textContent = r.total === 0
      ? (raw.indexOf("/") === -1
        ? "No backed-up file name holds that. To search folders too, add a / (2019/ or photos/2019)."
        : "No backed-up path holds that.")
      : r.total + (r.total === 1 ? " name" : " names") +
        (r.total > r.hits.length ? ", the first " + r.hits.length + " shown" : "");
    r.hits.forEach(function (h) {
      var tr = document.createElement("tr");
      tr.className = "hit";
      if (sets.length > 1) cell(tr, h.set.name);
      cell(tr, path(h.set, h.k), "name");
      var ds = discsOf(h.set, h.k).map(function (d) {
        return h.set.lost.indexOf(d) !== -1 ? d + " (lost)" : d;
      });
      var td = cell(tr, ds.join(", "), "discs");
      td.setAttribute("data-discs", discsOf(h.set, h.k).join(","));
      body.appendChild(tr);
    });
  }

  load();
  var box = document.getElementById("q");
  var timer = null;
  box.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () { show(box.value); }, 120);
  });
  var m = /^#q=(.*)$/.exec(location.hash);
  if (m) {
    var typed = m[1];
    try { typed = decodeURIComponent(typed); } catch (e) { /* not %-encoded: as typed */ }
    box.value = typed;
    show(box.value);
  }
  document.documentElement.setAttribute("data-ready", "1");
})();
