(function () {
  "use strict";
  const D = JSON.parse(document.getElementById("trace-data").textContent);
  const V = D.view, F = D.frames, L = D.fixed.length, N = F.length;
  const hidden = new Set(V.hidden || []);
  const label = (i) => (V.labels ? V.labels[i] : "#" + i);
  const shown = (t) => D.text[t];
  const el = (tag, cls, parent) => { const e = document.createElement(tag); if (cls) e.className = cls;
    if (parent) parent.appendChild(e); return e; };
  const svgEl = (tag, attrs, parent) => { const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    for (const k in attrs) e.setAttribute(k, attrs[k]); if (parent) parent.appendChild(e); return e; };
  const nodes = new Array(L);  // per position: {root, tok, bar, shade}

  document.getElementById("title").textContent = D.title;
  document.getElementById("caption").textContent = V.caption || "";
  const inline = V.kind === "text";  // text: before / after flow around the positions in one block
  document.getElementById("before").textContent = inline ? "" : V.before || "";
  document.getElementById("after").textContent = inline ? "" : V.after || "";
  const verdict = document.getElementById("verdict");
  verdict.textContent = D.result.valid ? "validated" : "not solved";
  verdict.className = D.result.valid ? "ok" : "bad";
  const host = document.getElementById("canvas");

  function htmlCell(i, parent) {
    const c = el("div", "pos cell", parent);
    c.dataset.pos = i; c.title = label(i);
    const shade = el("div", "shade", c), tok = el("span", "tok", c), bar = el("div", "bar", c);
    nodes[i] = { root: c, tok: tok, bar: bar, shade: shade, barMax: 1, base: "pos cell " };
    return c;
  }

  function textCell(i, parent) {  // an inline run of text: a newline in the token breaks the line
    const c = el("span", "pos tcell", parent);
    c.dataset.pos = i; c.title = label(i);
    const tok = el("span", "tok", c);
    nodes[i] = { root: c, tok: tok, bar: document.createElement("span"), shade: null, barMax: 1, base: "pos tcell " };
    return c;
  }

  if (V.kind === "grid") {
    const g = el("div", "grid", host);
    let rows = 0, cols = 0; const at = {};
    for (let i = 0; i < L; i++) { const [r, c] = V.coords[i]; rows = Math.max(rows, r + 1); cols = Math.max(cols, c + 1);
      at[r + "," + c] = i; }
    g.style.gridTemplateColumns = "repeat(" + cols + ", auto)";
    for (let i = 0; i < L; i++) {
      if (hidden.has(i)) continue;
      const [r, c] = V.coords[i]; const cell = htmlCell(i, g);
      cell.style.gridRow = r + 1; cell.style.gridColumn = c + 1;
      if (V.regions) {
        const right = at[r + "," + (c + 1)], below = at[(r + 1) + "," + c];
        if (right !== undefined && V.regions[right] !== V.regions[i]) cell.classList.add("tr");
        if (below !== undefined && V.regions[below] !== V.regions[i]) cell.classList.add("tb");
      }
    }
  } else if (V.kind === "lines") {
    const box = el("div", "lines", host); const byLine = new Map();
    for (let i = 0; i < L; i++) { if (hidden.has(i)) continue; const ln = V.coords[i][0];
      if (!byLine.has(ln)) byLine.set(ln, []); byLine.get(ln).push(i); }
    [...byLine.keys()].sort((a, b) => a - b).forEach((ln) => {
      const row = el("div", "ln", box); el("span", "no", row).textContent = ln + 1;
      byLine.get(ln).sort((a, b) => V.coords[a][1] - V.coords[b][1]).forEach((i) => htmlCell(i, row));
    });
  } else if (V.kind === "text") {
    const box = el("pre", "code", host);
    el("span", "ctx", box).textContent = V.before || "";
    const hole = el("span", "hole", box);
    for (let i = 0; i < L; i++) if (!hidden.has(i)) textCell(i, hole);
    el("span", "ctx", box).textContent = V.after || "";
  } else if (V.kind === "graph") {
    const W = 640, H = 520, M = 30;  // node radius: a little under half the closest pair's distance
    const raw = (i) => [M + V.coords[i][0] * (W - 2 * M), M + V.coords[i][1] * (H - 2 * M)];
    const vis = []; for (let i = 0; i < L; i++) if (!hidden.has(i)) vis.push(raw(i));
    let dmin = Infinity;
    for (let a = 0; a < vis.length && a < 600; a++) for (let b = a + 1; b < vis.length; b++)
      dmin = Math.min(dmin, Math.hypot(vis[a][0] - vis[b][0], vis[a][1] - vis[b][1]));
    const R = Math.max(6, Math.min(22, 0.45 * dmin));
    const s = svgEl("svg", { class: "graph", width: W, height: H, viewBox: "0 0 " + W + " " + H }, host);
    const xy = raw;
    for (const [a, b] of V.edges) { const [x1, y1] = xy(a), [x2, y2] = xy(b); svgEl("line", { x1, y1, x2, y2 }, s); }
    for (let i = 0; i < L; i++) {
      if (hidden.has(i)) continue;
      const [x, y] = xy(i); const g = svgEl("g", { class: "pos", "data-pos": i }, s);
      svgEl("title", {}, g).textContent = label(i);
      svgEl("circle", { class: "node", cx: x, cy: y, r: R }, g);
      const tok = svgEl("text", { x: x, y: y }, g);
      const bar = svgEl("rect", { class: "cbar", x: x - R, y: y + R + 3, width: 0, height: 3 }, g);
      nodes[i] = { root: g, tok: tok, bar: bar, shade: null, barMax: 2 * R, svg: true, base: "pos " };
    }
  } else {  // strip
    const per = V.per_row || Math.min(L, 32); const box = el("div", "strip", host);
    box.style.gridTemplateColumns = "repeat(" + per + ", auto)";
    for (let i = 0; i < L; i++) {
      if (hidden.has(i)) continue;
      const slot = el("div", "slot", box); htmlCell(i, slot);
      el("span", "lab", slot).textContent = V.labels ? V.labels[i] : i;
    }
  }

  // ---- per-frame state --------------------------------------------------------------
  function states(f) {
    const fr = F[f], st = new Array(L), isLast = f === N - 1;
    const rv = new Set(fr.rv), rc = new Set(fr.rc), nw = new Set(fr.new);
    const guess = new Set(fr.guess || []), bad = new Set(fr.violations || []);
    for (let i = 0; i < L; i++) {
      let s;
      if (D.fixed[i]) s = isLast && bad.has(i) ? "given-bad" : "given";
      else if (isLast) s = bad.has(i) ? "bad" : guess.has(i) ? "guess" : "committed";
      else if (rv.has(i)) s = "rv";
      else if (rc.has(i)) s = "rc";
      else if (fr.committed[i]) s = nw.has(i) ? "new" : "committed";
      else s = "empty";
      st[i] = s;
    }
    return st;
  }

  function tokenAt(fr, i, s) {  // re-noised positions show the value that went back, struck through
    if ((s === "rv" || s === "rc") && fr.proposed.length) return fr.proposed[i];
    return fr.tokens[i];
  }

  let cur = 0, timer = null;
  const slider = document.getElementById("slider"); slider.max = N - 1;

  function show(f) {
    f = Math.max(0, Math.min(N - 1, f | 0)); cur = f;
    const fr = F[f], st = states(f);
    for (let i = 0; i < L; i++) {
      const n = nodes[i]; if (!n) continue;
      const t = tokenAt(fr, i, st[i]); const txt = (st[i] === "empty") ? "" : shown(t);
      n.root.setAttribute("class", n.base + "s-" + st[i]);
      n.root.dataset.state = st[i];
      n.root.dataset.token = st[i] === "empty" ? "" : D.vocab[t];
      n.tok.textContent = txt;
      const fill = V.palette[D.vocab[t]];
      if (fill && st[i] !== "empty") n.root.style.setProperty("--fill", fill); else n.root.style.removeProperty("--fill");
      const c = fr.confidence && !D.fixed[i] ? fr.confidence[i] / 1000 : 0;
      if (n.svg) n.bar.setAttribute("width", (c * n.barMax).toFixed(1));
      else n.bar.style.width = "calc((100% - 6px) * " + c.toFixed(3) + ")";
      if (n.shade) n.shade.style.opacity = st[i] === "empty" ? (0.35 * c).toFixed(3) : 0;
      n.root.setAttribute("title", label(i) + (fr.confidence ? " \u2014 confidence " + c.toFixed(3) : ""));
    }
    // grid region borders survive the class rewrite
    if (V.kind === "grid") for (let i = 0; i < L; i++) { const n = nodes[i]; if (!n) continue;
      n.root.classList.toggle("tr", !!n.tr); n.root.classList.toggle("tb", !!n.tb); }
    panel(f, st);
    slider.value = f;
    document.getElementById("frame-label").textContent =
      (f === 0 ? "start" : f === N - 1 ? "result" : "pass " + f + " / " + (N - 2));
    document.body.dataset.frame = f;
    document.body.dataset.label = fr.label;
    drawCursor(f);
    if (!timer) try { history.replaceState(null, "", "?pass=" + (f === N - 1 ? "result" : f)); } catch (e) { /* file: */ }
  }

  function panel(f, st) {
    const fr = F[f], free = D.fixed.reduce((a, x) => a + (x ? 0 : 1), 0);
    const givens = D.fixed.reduce((a, x, i) => a + (x && !hidden.has(i) ? 1 : 0), 0);  // drawn givens only
    document.getElementById("pass-label").textContent =
      f === 0 ? "the problem" : f === N - 1 ? (D.result.valid ? "result: validated" : "result: not solved")
        : "pass " + f + " of " + (N - 2);
    const rows = [];
    const nCommitted = fr.committed.reduce((a, x, i) => a + (x && !D.fixed[i] ? 1 : 0), 0)
      - (fr.guess ? fr.guess.length : 0);
    rows.push(["givens", givens], ["committed", nCommitted + " / " + free]);
    if (fr.guess && fr.guess.length) rows.push(["filled from the model's last guess", fr.guess.length]);
    if (f > 0 && f < N - 1) {
      rows.push(["newly committed", fr.new.length], ["re-noised by the validator", fr.rv.length],
        ["re-noised for low confidence", fr.rc.length]);
      let s = 0, n = 0; for (let i = 0; i < L; i++) if (!D.fixed[i] && !fr.committed[i]) { s += fr.confidence[i]; n++; }
      rows.push(["mean confidence, open positions", n ? (s / n / 1000).toFixed(3) : "\u2014"]);
    }
    if (f === N - 1) rows.push(["passes", D.result.passes], ["restarts", D.result.restarts],
      ["violations left", D.result.violations.length]);
    const tb = document.getElementById("stats"); tb.innerHTML = "";
    for (const [k, v] of rows) { const tr = el("tr", "", tb); el("td", "", tr).textContent = k; el("td", "", tr).textContent = v; }
    document.getElementById("restart-banner").hidden = !fr.restarted;
    const ul = document.getElementById("renoised"); ul.innerHTML = "";
    const add = (i, why) => { const li = el("li", "", ul);
      const t = fr.proposed.length ? shown(fr.proposed[i]) : "";
      li.textContent = label(i) + (t ? " (" + t + ")" : "") + " \u2014 " + why; };
    fr.rv.forEach((i) => add(i, "validator")); fr.rc.forEach((i) => add(i, "low confidence"));
    if (!fr.rv.length && !fr.rc.length) el("li", "", ul).textContent = "none";
    const ms = document.getElementById("messages"); ms.innerHTML = "";
    const msgs = fr.messages || [];
    if (!msgs.length) el("li", "", ms).textContent = f === 0 ? "(not run yet)" : "no complaints";
    msgs.slice(0, 60).forEach((m) => { el("li", "", ms).textContent = m; });
    if (msgs.length > 60) el("li", "", ms).textContent = "\u2026 " + (msgs.length - 60) + " more";
  }

  // ---- chart ------------------------------------------------------------------------
  const chart = document.getElementById("chart"); let cursor = null;
  function drawChart() {
    const P = N - 2, W = 1000, H = 140, pad = 8; if (P < 1) return;
    const x = (f) => pad + (W - 2 * pad) * (P === 1 ? 0.5 : (f - 1) / (P - 1));
    const y = (v) => H - pad - v * (H - 2 * pad);
    const free = D.fixed.reduce((a, v) => a + (v ? 0 : 1), 0) || 1;
    let maxR = 1; for (let f = 1; f <= P; f++) maxR = Math.max(maxR, F[f].rv.length + F[f].rc.length);
    const bw = Math.max(2, (W - 2 * pad) / P * 0.5);
    for (let f = 1; f <= P; f++) {
      const a = F[f].rv.length / maxR, b = F[f].rc.length / maxR;
      if (a) svgEl("rect", { x: x(f) - bw / 2, y: y(a * 0.6), width: bw, height: a * 0.6 * (H - 2 * pad), fill: "#d9363e",
        opacity: .55 }, chart);
      if (b) svgEl("rect", { x: x(f) - bw / 2, y: y((a + b) * 0.6), width: bw, height: b * 0.6 * (H - 2 * pad),
        fill: "#f0a020", opacity: .65 }, chart);
    }
    const line = (vals, color) => { let d = ""; vals.forEach((v, k) => { d += (k ? "L" : "M") + x(k + 1).toFixed(1) + " " + y(v).toFixed(1); });
      svgEl("path", { d: d, fill: "none", stroke: color, "stroke-width": 2.5, "vector-effect": "non-scaling-stroke" }, chart); };
    const committed = [], conf = [];
    for (let f = 1; f <= P; f++) {
      const fr = F[f]; let c = 0, s = 0, n = 0;
      for (let i = 0; i < L; i++) { if (D.fixed[i]) continue; if (fr.committed[i]) c++; else { s += fr.confidence[i]; n++; } }
      committed.push(c / free); conf.push(n ? s / n / 1000 : (conf.length ? conf[conf.length - 1] : 1));
    }
    line(committed, "#2a6fdb"); line(conf, "#2e9d5b");
    cursor = svgEl("rect", { x: 0, y: 0, width: 3, height: H, fill: "#333", opacity: .35 }, chart);
    chart.addEventListener("click", (ev) => { const r = chart.getBoundingClientRect();
      const u = (ev.clientX - r.left) / r.width * W; stop(); show(Math.round(1 + (u - pad) / (W - 2 * pad) * (P - 1))); });
    chart._x = x;
  }
  function drawCursor(f) { if (!cursor) return; const P = N - 2; const g = Math.max(1, Math.min(P, f));
    cursor.setAttribute("x", chart._x(g) - 1.5); cursor.setAttribute("opacity", f === 0 || f === N - 1 ? .12 : .35); }

  // ---- controls ---------------------------------------------------------------------
  const playBtn = document.getElementById("play");
  function stop() { if (timer) { clearInterval(timer); timer = null; } playBtn.innerHTML = "&#x25B6;";
    document.body.dataset.playing = "0"; }
  function play() { if (cur >= N - 1) show(0); playBtn.innerHTML = "&#x25AE;&#x25AE;"; document.body.dataset.playing = "1";
    timer = setInterval(() => { if (cur >= N - 1) { stop(); show(cur); return; } show(cur + 1); },
      +document.getElementById("speed").value); }
  playBtn.addEventListener("click", () => (timer ? stop() : play()));
  document.getElementById("next").addEventListener("click", () => { stop(); show(cur + 1); });
  document.getElementById("prev").addEventListener("click", () => { stop(); show(cur - 1); });
  document.getElementById("first").addEventListener("click", () => { stop(); show(0); });
  document.getElementById("last").addEventListener("click", () => { stop(); show(N - 1); });
  document.getElementById("speed").addEventListener("change", () => { if (timer) { stop(); play(); } });
  slider.addEventListener("input", () => { stop(); show(+slider.value); });
  document.addEventListener("keydown", (ev) => {
    if (ev.target && ev.target.tagName === "SELECT") return;
    const k = ev.key;
    if (k === "ArrowRight") { stop(); show(cur + 1); } else if (k === "ArrowLeft") { stop(); show(cur - 1); }
    else if (k === "Home") { stop(); show(0); } else if (k === "End") { stop(); show(N - 1); }
    else if (k === " ") { timer ? stop() : play(); } else return;
    ev.preventDefault();
  });

  // remember region borders before the first class rewrite
  if (V.kind === "grid") for (let i = 0; i < L; i++) { const n = nodes[i]; if (!n) continue;
    n.tr = n.root.classList.contains("tr"); n.tb = n.root.classList.contains("tb"); }
  drawChart();
  const q = new URLSearchParams(location.search); const qp = q.get("pass");
  show(qp === null ? 0 : (qp === "result" || qp === "last") ? N - 1 : +qp);
  if (q.get("play") === "1") play();
  window.constrainedTrace = { frames: N, show: (f) => { stop(); show(f); }, frame: () => cur };
  document.body.dataset.frames = N;
  document.body.dataset.ready = "1";
})();
