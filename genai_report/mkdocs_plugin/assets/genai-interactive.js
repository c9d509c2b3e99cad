/* genai-report: interactive views of figures (genai_report/plotting/interactive.py writes
   their data). Each <div class="genai-interactive"> names its view's JSON; this script
   draws it in place of the static image, which stays for print, the PDF and readers
   without JavaScript. Line charts use uPlot, served by the site and loaded only on pages
   that have one. Nothing is fetched from off the host. */
(function () {
  "use strict";

  var uplotLoading = null;

  function loadUPlot(holder) {
    if (window.uPlot) return Promise.resolve(window.uPlot);
    if (uplotLoading) return uplotLoading;
    uplotLoading = new Promise(function (resolve, reject) {
      var css = document.createElement("link");
      css.rel = "stylesheet";
      css.href = holder.getAttribute("data-lib-css");
      document.head.appendChild(css);
      var script = document.createElement("script");
      script.src = holder.getAttribute("data-lib");
      script.onload = function () { resolve(window.uPlot); };
      script.onerror = function () { reject(new Error("uPlot did not load")); };
      document.head.appendChild(script);
    });
    return uplotLoading;
  }

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  /* -- the scheme: under Material's dark (slate) scheme a view takes the dark palette of
     the figures (genai_report/plotting/dark.py): the plugin lists, in data-dark, the dark
     twin of every colour the view's JSON names; paper and ink come from the stylesheet. */
  function isDark() {
    return document.body.getAttribute("data-md-color-scheme") === "slate";
  }

  function tone(holder, colour) {
    if (!isDark() || !colour) return colour;
    if (!holder._dark) holder._dark = JSON.parse(holder.getAttribute("data-dark") || "{}");
    return holder._dark[String(colour).toLowerCase()] || colour;
  }

  function ink(holder, name) {  // --genai-ink, --genai-grid, --genai-paper
    return getComputedStyle(holder).getPropertyValue(name).trim() || undefined;
  }

  function hint(holder, view) {
    if (view.hint) holder.appendChild(el("p", "genai-interactive-hint", view.hint));
  }

  /* -- lines: every series on one pair of axes; hover reads them, the legend toggles -- */
  function fmt(v, digits) {
    if (v === null || v === undefined) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) {  // 1.23e5, not 1.23e+5
      var m = v.toExponential(digits === undefined ? 2 : digits).split("e");
      return Number(m[0]).toString() + "e" + Number(m[1]);
    }
    return Number(v.toPrecision(digits === undefined ? 4 : digits + 1)).toString();
  }

  function ticks(u, vals) {  // tick labels: short; the unlabelled minor ticks of a log axis
    return vals.map(function (v) { return v === null ? "" : fmt(v, 1); });
  }

  function scale(log) {  // a log axis spans whole decades; a linear one the data, padded
    if (log) return { distr: 3 };
    return { distr: 1, range: function (u, lo, hi) {
      if (lo === null || hi === null) return [lo, hi];
      var pad = (hi - lo) * 0.06 || Math.abs(hi) * 0.05 || 1;
      return [lo - pad, hi + pad];
    } };
  }

  function drawPanel(uPlot, grid, p, holder) {
    var xs = [];
    p.series.forEach(function (s) { s.x.forEach(function (x) { if (x !== null) xs.push(x); }); });
    xs = Array.from(new Set(xs)).sort(function (a, b) { return a - b; });
    var index = new Map(xs.map(function (x, i) { return [x, i]; }));
    var data = [xs];
    var series = [{ label: p.x.label, value: function (u, v) { return fmt(v); } }];
    p.series.forEach(function (s) {
      var ys = new Array(xs.length).fill(null);
      s.x.forEach(function (x, i) { if (x !== null) ys[index.get(x)] = s.y[i]; });
      data.push(ys);
      series.push({
        label: s.label, stroke: tone(holder, s.color), width: s.width, show: s.show,
        spanGaps: true, dash: s.dash ? [6, 4] : undefined,
        points: { show: s.points, size: 5, fill: tone(holder, s.color), stroke: tone(holder, s.color) },
        value: function (u, v) { return fmt(v); },
      });
    });
    var chart = el("div", "genai-uplot" + (p.wide ? " genai-uplot--wide" : ""));
    grid.appendChild(chart);
    var width = function () {  // the chart's content box (its padding excluded)
      var cs = getComputedStyle(chart);
      return Math.max(240, Math.floor(chart.clientWidth - parseFloat(cs.paddingLeft) -
                                      parseFloat(cs.paddingRight)));
    };
    var plot = new uPlot({
      width: width(), height: Math.round(Math.min(360, Math.max(220, width() * 0.6))),
      title: p.title || undefined,
      scales: { x: Object.assign({ time: false }, scale(p.x.log)), y: scale(p.y.log) },
      axes: [axis(holder, { label: p.x.label, values: ticks }),
             axis(holder, { label: p.y.label, values: ticks, size: 56 })],
      series: series,
      legend: { live: true },
      cursor: { focus: { prox: 24 } },
      focus: { alpha: 0.3 },
    }, data, chart);
    if (window.ResizeObserver) {
      new ResizeObserver(function () {
        var w = width();
        if (Math.abs(w - plot.width) > 4) plot.setSize({ width: w, height: plot.height });
      }).observe(chart);
    }
  }

  function axis(holder, options) {  // axis text, ticks and grid in the scheme's ink
    var line = { stroke: ink(holder, "--genai-grid"), width: 1 };
    return Object.assign({ stroke: ink(holder, "--genai-ink"), grid: line, ticks: line }, options);
  }

  function drawLines(holder, view) {
    return loadUPlot(holder).then(function (uPlot) {
      var grid = el("div", "genai-uplot-grid");
      holder.appendChild(grid);
      view.panels.forEach(function (p) { drawPanel(uPlot, grid, p, holder); });
      hint(holder, view);
    });
  }

  /* -- attention: hover a character to see where it attends -------------------------- */
  function drawAttention(holder, view) {
    var tokens = view.tokens, weights = view.weights;
    var L = weights.length, H = weights[0].length;
    var state = { layer: L - 1, head: 0, query: null };
    var controls = el("div", "genai-attention-controls");
    function selector(label, n, key) {
      var wrap = el("label", null, label + " ");
      var sel = el("select");
      for (var i = 0; i < n; i++) sel.appendChild(new Option(String(i), String(i)));
      sel.value = String(state[key]);
      sel.addEventListener("change", function () { state[key] = Number(sel.value); paint(); });
      wrap.appendChild(sel);
      controls.appendChild(wrap);
    }
    selector("layer", L, "layer");
    selector("head", H, "head");
    var text = el("div", "genai-attention-text");
    text.setAttribute("role", "group");
    text.setAttribute("aria-label", "Characters of the sentence; hover or focus one");
    var spans = tokens.map(function (t, i) {
      var s = el("span", "genai-attention-token", t === " " ? "\u00a0" : t);
      s.tabIndex = 0;
      s.dataset.index = String(i);
      var pick = function () { state.query = i; paint(); };
      s.addEventListener("mouseenter", pick);
      s.addEventListener("focus", pick);
      text.appendChild(s);
      return s;
    });
    var readout = el("p", "genai-attention-readout");
    // The selected head's whole map: row i is query i; hover a row to pick that query.
    var T = tokens.length, cell = Math.max(4, Math.floor(220 / T));
    var canvas = el("canvas", "genai-attention-map");
    canvas.width = canvas.height = T * cell;
    canvas.setAttribute("role", "img");
    canvas.addEventListener("mousemove", function (e) {
      var r = canvas.getBoundingClientRect();
      var i = Math.floor((e.clientY - r.top) / r.height * T);
      if (i >= 0 && i < T && i !== state.query) { state.query = i; paint(); }
    });
    function drawMap() {
      var ctx = canvas.getContext("2d"), map = weights[state.layer][state.head];
      ctx.fillStyle = ink(holder, "--genai-paper") || "#ffffff";
      ctx.fillRect(0, 0, canvas.width, canvas.height);
      for (var i = 0; i < T; i++) {
        for (var j = 0; j <= i; j++) {
          ctx.fillStyle = "rgba(224, 123, 57, " + (0.06 + 0.94 * Math.sqrt(map[i][j])) + ")";  // sqrt: small weights stay visible
          ctx.fillRect(j * cell, i * cell, cell, cell);
        }
      }
      if (state.query !== null) {
        ctx.strokeStyle = "#3b6fb6";
        ctx.lineWidth = 2;
        ctx.strokeRect(1, state.query * cell + 1, canvas.width - 2, cell - 2);
      }
      canvas.setAttribute("aria-label", "Attention map of layer " + state.layer + ", head " +
                          state.head + ": row i shows where character i attends");
    }
    function paint() {
      drawMap();
      var q = state.query;
      var row = q === null ? null : weights[state.layer][state.head][q];
      var best = -1, best0 = 0;  // shading is relative to the row's largest weight
      if (row) row.forEach(function (w, j) { if (w > row[best0]) best0 = j; });
      spans.forEach(function (s, j) {
        var w = row ? row[j] : 0;
        s.style.setProperty("--w", String(w));
        s.style.setProperty("--shade", String(row && row[best0] > 0 ? w / row[best0] : 0));
        s.classList.toggle("genai-attention-query", j === q);
        if (row && (best < 0 || w > row[best])) best = j;
        s.title = row ? "weight " + w.toFixed(3) : "";
      });
      readout.textContent = q === null ? "Hover or focus a character."
        : "Layer " + state.layer + ", head " + state.head + ": the character \u201c" + tokens[q] +
          "\u201d at position " + q + " gives its largest weight (" + row[best].toFixed(2) +
          ") to \u201c" + tokens[best] + "\u201d at position " + best + ".";
    }
    var body = el("div", "genai-attention-body");
    var side = el("div");
    side.append(text, readout);
    body.append(canvas, side);
    holder.appendChild(controls);
    holder.appendChild(body);
    hint(holder, view);
    paint();
    return Promise.resolve();
  }

  /* -- slider: frames of one picture (stacked top to bottom), one per value --------- */
  function drawSlider(holder, view) {
    var steps = view.steps, n = steps.length;
    var wrap = el("div", "genai-slider");
    var label = el("label", "genai-slider-label");
    var input = el("input");
    input.type = "range";
    input.min = "0";
    input.max = String(n - 1);
    input.step = "1";
    input.value = String(view.start || 0);
    var value = el("output", "genai-slider-value");
    label.append(view.label + " ", input, value);
    var frame = el("div", "genai-slider-frame");
    var img = el("img", "genai-slider-image");
    img.alt = "";
    frame.appendChild(img);
    var caption = el("p", "genai-slider-caption");
    caption.setAttribute("aria-live", "polite");
    function show() {
      var k = Number(input.value), s = steps[k];
      value.textContent = " " + s.value;
      img.style.transform = "translateY(" + (-100 * k / n) + "%)";
      frame.setAttribute("aria-label", view.label + " " + s.value + ": " + s.caption);
      caption.textContent = s.caption;
    }
    input.addEventListener("input", show);
    wrap.append(label, frame, caption);
    holder.appendChild(wrap);
    hint(holder, view);
    return new Promise(function (resolve, reject) {
      img.onload = function () {
        frame.style.aspectRatio = img.naturalWidth + " / " + (img.naturalHeight / n);
        frame.style.maxWidth = img.naturalWidth + "px";
        show();
        resolve();
      };
      img.onerror = function () { reject(new Error("slider image did not load")); };
      img.src = holder.getAttribute("data-base") + view.image;
    });
  }

  /* -- text: characters as text, each coloured, with a note on hover ---------------- */
  function drawText(holder, view) {
    view.blocks.forEach(function (b) {
      holder.appendChild(el("p", "genai-text-title", b.title));
      var body = el("div", "genai-text-body");
      Array.from(b.text).forEach(function (ch, i) {
        var s = el("span", i < b.bold ? "genai-text-prompt" : null, ch === "\n" ? "\u21b5\n" : ch);
        s.style.color = tone(holder, b.colors[i]);
        if (b.notes[i]) s.title = b.notes[i];
        body.appendChild(s);
      });
      holder.appendChild(body);
    });
    if (view.legend) holder.appendChild(el("p", "genai-text-legend", view.legend));
    hint(holder, view);
    return Promise.resolve();
  }

  /* -- parts: views of other kinds, one after the other ------------------------------ */
  function drawParts(holder, view) {
    var done = Promise.resolve();
    view.parts.forEach(function (part) {
      var sub = el("div", "genai-interactive-part");
      Array.from(holder.attributes).forEach(function (a) {  // the URLs a part may need
        if (a.name.indexOf("data-") === 0 && a.name !== "data-state") sub.setAttribute(a.name, a.value);
      });
      holder.appendChild(sub);
      done = done.then(function () { return DRAW[part.kind](sub, part); });
    });
    return done.then(function () { hint(holder, view); });
  }

  var DRAW = { lines: drawLines, attention: drawAttention, slider: drawSlider, text: drawText,
               parts: drawParts };

  function render(holder) {
    if (holder.dataset.state) return;
    holder.dataset.state = "loading";
    fetch(holder.getAttribute("data-view"))
      .then(function (r) {
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(function (view) {
        var draw = DRAW[view.kind];
        if (!draw) throw new Error("unknown view kind " + view.kind);
        return draw(holder, view);
      })
      .then(function () {
        holder.dataset.state = "ready";
        if (holder.getAttribute("data-replaces") === "true")
          holder.closest("figure").classList.add("genai-figure--interactive");
      })
      .catch(function (err) {  // the static image stays; say why in the console only
        holder.dataset.state = "failed";
        holder.textContent = "";
        console.warn("genai-report: interactive view not shown (" + err.message + ")");
      });
  }

  function renderAll() {
    document.querySelectorAll(".genai-interactive").forEach(render);
  }
  // The reader switched schemes: draw every view again in the new palette.
  new MutationObserver(function () {
    document.querySelectorAll(".genai-interactive[data-state]").forEach(function (holder) {
      if (holder.dataset.state === "loading") return;
      holder.textContent = "";
      delete holder.dataset.state;
      render(holder);
    });
  }).observe(document.body, { attributes: true, attributeFilter: ["data-md-color-scheme"] });
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", renderAll);
  else renderAll();
})();
