// The channel graph page's interaction (ksm graph --format html). Self-contained: no
// library, no network. The drawings are plain SVG made by ksm/flows/drawing.py; this
// script adds zoom and pan, search, focus on a process, filters, views, and the
// highlighting of flow properties. Without it the page still shows every drawing,
// table and panel, one after the other.
(function () {
  "use strict";
  var root = document.documentElement;
  root.classList.add("js");

  // ------------------------------------------------------------------ zoom and pan
  function Viewport(frame) {
    this.frame = frame;
    this.svg = frame.querySelector("svg");
    this.scene = this.svg.querySelector(".scene");
    this.w = +this.svg.getAttribute("data-width");
    this.h = +this.svg.getAttribute("data-height");
    this.s = 1; this.tx = 0; this.ty = 0;
    var self = this, drag = null;
    frame.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      var r = self.svg.getBoundingClientRect();
      self.zoomAt(ev.clientX - r.left, ev.clientY - r.top, ev.deltaY < 0 ? 1.2 : 1 / 1.2);
    }, {passive: false});
    frame.addEventListener("pointerdown", function (ev) {
      if (ev.target.closest && ev.target.closest(".node")) return;     // a click on a box is a selection
      drag = {x: ev.clientX, y: ev.clientY, tx: self.tx, ty: self.ty};
      frame.classList.add("dragging");
    });
    window.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      self.tx = drag.tx + ev.clientX - drag.x; self.ty = drag.ty + ev.clientY - drag.y; self.apply();
    });
    window.addEventListener("pointerup", function () { drag = null; frame.classList.remove("dragging"); });
  }
  Viewport.prototype.size = function () {
    return {w: this.frame.clientWidth, h: this.frame.clientHeight};
  };
  Viewport.prototype.apply = function () {
    var v = this.size();
    this.svg.setAttribute("width", v.w); this.svg.setAttribute("height", v.h);
    this.svg.setAttribute("viewBox", "0 0 " + v.w + " " + v.h);
    this.scene.setAttribute("transform", "translate(" + this.tx + "," + this.ty + ") scale(" + this.s + ")");
    this.frame.setAttribute("data-scale", this.s.toFixed(4));
  };
  Viewport.prototype.zoomAt = function (x, y, k) {
    var s = Math.min(4, Math.max(0.02, this.s * k));
    this.tx = x - (x - this.tx) * s / this.s; this.ty = y - (y - this.ty) * s / this.s; this.s = s;
    this.apply();
  };
  // Show the rectangle (drawing coordinates) whole, centred, at most at scale `most`.
  Viewport.prototype.show = function (x, y, w, h, most) {
    var v = this.size(), pad = 16;
    var s = Math.min((v.w - 2 * pad) / Math.max(w, 1), (v.h - 2 * pad) / Math.max(h, 1), most || 1.5);
    this.s = s; this.tx = (v.w - w * s) / 2 - x * s; this.ty = (v.h - h * s) / 2 - y * s;
    this.apply();
  };
  Viewport.prototype.fit = function () { this.show(0, 0, this.w, this.h, 1.5); };
  Viewport.prototype.showElements = function (els, most) {
    var x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    els.forEach(function (el) {
      var b = el.getBBox();
      x0 = Math.min(x0, b.x); y0 = Math.min(y0, b.y); x1 = Math.max(x1, b.x + b.width); y1 = Math.max(y1, b.y + b.height);
    });
    if (x0 < Infinity) this.show(x0, y0, x1 - x0, y1 - y0, most);
  };

  var frames = {};
  document.querySelectorAll(".frame").forEach(function (f) { frames[f.getAttribute("data-view")] = new Viewport(f); });

  // ------------------------------------------------------------------ views
  var views = document.querySelectorAll(".view");
  var tabs = document.querySelectorAll("#tabs button");
  var current = null;
  function showView(name) {
    current = name;
    views.forEach(function (v) { v.classList.toggle("active", v.id === "view-" + name); });
    tabs.forEach(function (t) { t.classList.toggle("active", t.getAttribute("data-view") === name); });
    root.setAttribute("data-view", name);
    if (frames[name]) frames[name].fit();
  }
  tabs.forEach(function (t) { t.addEventListener("click", function () { showView(t.getAttribute("data-view")); }); });

  // ------------------------------------------------------------------ focus
  var panels = document.querySelectorAll(".node-detail");
  var selectable = document.querySelectorAll("[data-edges]");
  function clear() {
    selectable.forEach(function (r) { r.classList.remove("selected"); });
    panels.forEach(function (p) { p.classList.remove("open"); });
    document.querySelectorAll(".focus, .near").forEach(function (e) { e.classList.remove("focus", "near"); });
    document.querySelectorAll("svg.focusing").forEach(function (s) { s.classList.remove("focusing"); });
  }
  // Highlight the arrows `ids` (and the boxes at their ends); `el`: the row or box chosen.
  function focus(el, ids, fitTo) {
    var on = !el.classList.contains("selected");
    clear();
    if (!on) return;
    el.classList.add("selected");
    var edges = ids.map(function (id) { return document.getElementById(id); }).filter(Boolean);
    var svg = edges.length ? edges[0].ownerSVGElement : el.ownerSVGElement;
    if (svg) svg.classList.add("focusing");
    var near = [];
    edges.forEach(function (e) {
      e.classList.add("focus");
      ["data-from", "data-to"].forEach(function (a) {
        var n = document.getElementById(e.getAttribute(a));
        if (n) { n.classList.add("near"); near.push(n); }
      });
    });
    if (el.classList.contains("node")) near.push(el);
    (el.getAttribute("data-detail") || "").split(" ").forEach(function (id) {
      var panel = id && document.getElementById(id);
      if (panel) panel.classList.add("open");
    });
    if (fitTo && svg) {
      var view = svg.closest(".frame").getAttribute("data-view");
      if (view !== current) showView(view);
      frames[view].showElements(near.concat(edges), 1.2);
    }
  }
  function edgesOf(el) {
    var e = el.getAttribute("data-edges");
    return e ? e.split(" ") : [];
  }
  selectable.forEach(function (r) {
    var isNode = r.classList.contains("node");
    r.addEventListener("click", function () { focus(r, edgesOf(r), !isNode); });
    r.addEventListener("keydown", function (ev) { if (ev.key === "Enter") focus(r, edgesOf(r), !isNode); });
  });

  // ------------------------------------------------------------------ search
  var search = document.getElementById("search");
  function find(text) {
    text = text.trim().toLowerCase();
    if (!text) return null;
    var nodes = Array.prototype.slice.call(document.querySelectorAll("#view-procs .node"));
    var exact = nodes.filter(function (n) { return n.getAttribute("data-name").toLowerCase() === text; });
    if (exact.length) return exact[0];
    var part = nodes.filter(function (n) { return n.getAttribute("data-name").toLowerCase().indexOf(text) >= 0; });
    return part.length ? part[0] : null;
  }
  function searchNow() {
    var n = find(search.value);
    search.classList.toggle("missing", !n && search.value.trim() !== "");
    if (!n) return;
    if (n.classList.contains("selected")) clear();
    focus(n, edgesOf(n), true);
  }
  if (search) {
    search.addEventListener("keydown", function (ev) { if (ev.key === "Enter") searchNow(); });
    search.addEventListener("change", searchNow);
  }

  // ------------------------------------------------------------------ filters
  document.querySelectorAll("#filters input").forEach(function (box) {
    function apply() { root.classList.toggle("hide-" + box.getAttribute("data-hide"), !box.checked); }
    box.addEventListener("change", apply);
    apply();
  });

  // ------------------------------------------------------------------ buttons
  function act(id, fn) { var b = document.getElementById(id); if (b) b.addEventListener("click", fn); }
  act("fit", function () { if (frames[current]) frames[current].fit(); });
  act("zoom-in", function () { var f = frames[current]; if (f) { var v = f.size(); f.zoomAt(v.w / 2, v.h / 2, 1.4); } });
  act("zoom-out", function () { var f = frames[current]; if (f) { var v = f.size(); f.zoomAt(v.w / 2, v.h / 2, 1 / 1.4); } });

  // ------------------------------------------------------------------ matrix
  var cellPanel = document.getElementById("cell-detail");
  document.querySelectorAll("#matrix td[data-methods]").forEach(function (td) {
    td.addEventListener("click", function () {
      document.querySelectorAll("#matrix td.selected").forEach(function (c) { c.classList.remove("selected"); });
      td.classList.add("selected");
      cellPanel.textContent = td.getAttribute("title") + "\n" + td.getAttribute("data-methods");
    });
  });

  showView(root.getAttribute("data-start") || "procs");
  window.addEventListener("resize", function () { if (frames[current]) frames[current].fit(); });
  window.ksmGraph = {frames: frames, showView: showView, focus: focus, clear: clear};
})();
