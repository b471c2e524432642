// Charts of the fleet view, drawn as inline SVG: no library, nothing fetched.
"use strict";

const KnockCharts = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const COLOURS = { http: "#2f6fdf", udp: "#e0801e", xmpp: "#22a06b" };
  // Lines of the same values lie on each other: each method's is narrower and its dot smaller
  // than the one drawn before it, with a dash of its own, so every one shows where all agree.
  const STROKES = [
    { width: 6, dash: "none", radius: 8 },
    { width: 3.5, dash: "10 5", radius: 5.5 },
    { width: 1.5, dash: "3 3", radius: 3 },
  ];

  function svg(tag, attrs = {}, text) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function binLabel(edges, i) {
    const ms = (v) => (v >= 1000 ? `${v / 1000} s` : `${v} ms`);
    if (i === 0) return `< ${ms(edges[0])}`;
    if (i === edges.length) return `≥ ${ms(edges[edges.length - 1])}`;
    const [low, high] = [edges[i - 1], edges[i]];
    return high < 1000 ? `${low}–${high} ms` : `${low / 1000}–${high / 1000} s`;
  }

  // Grouped bars: one group per latency bin, one bar per method, height by count.
  function histogram(edges, methods, { width = 1100, height = 260 } = {}) {
    const names = Object.keys(methods);
    const bins = edges.length + 1;
    const pad = { left: 40, right: 10, top: 12, bottom: 42 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    // An even top keeps the middle grid line on a whole count.
    const top = 2 * Math.ceil(Math.max(1, ...names.flatMap((m) => methods[m].histogram)) / 2);
    const root = svg("svg", {
      id: "latency-histogram", viewBox: `0 0 ${width} ${height}`,
      role: "img", "aria-label": "Connection-request latency by method",
    });
    for (const fraction of [0, 0.5, 1]) {
      const y = pad.top + plotH * (1 - fraction);
      root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
      root.append(svg("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" },
        String(Math.round(top * fraction))));
    }
    const group = plotW / bins;
    const barW = (group * 0.8) / names.length;
    for (let bin = 0; bin < bins; bin++) {
      const x0 = pad.left + bin * group + group * 0.1;
      names.forEach((method, k) => {
        const count = methods[method].histogram[bin];
        if (count === 0) return;
        const h = (plotH * count) / top;
        const bar = svg("rect", {
          class: "bar", x: x0 + k * barW, y: pad.top + plotH - h, width: barW - 1, height: h,
          fill: COLOURS[method] || "#888",
          "data-method": method, "data-bin": bin, "data-count": count,
        });
        bar.append(svg("title", {}, `${method}: ${count} delivered in ${binLabel(edges, bin)}`));
        root.append(bar);
      });
      root.append(svg("text", {
        x: x0 + group * 0.4, y: height - pad.bottom + 16, class: "axis", "text-anchor": "middle",
      }, binLabel(edges, bin)));
    }
    root.append(legend(names, pad.left, height - 10));
    return root;
  }

  // The share of finished requests that were delivered, per slice of time, one line per method.
  function successRate(stats, { width = 1100, height = 220 } = {}) {
    const names = Object.keys(stats.methods);
    const pad = { left: 46, right: 10, top: 12, bottom: 40 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const slices = stats.methods[names[0]].slices.length;
    const root = svg("svg", {
      id: "success-rate", viewBox: `0 0 ${width} ${height}`,
      role: "img", "aria-label": "Share of connection requests delivered over time",
    });
    for (const fraction of [0, 0.5, 1]) {
      const y = pad.top + plotH * (1 - fraction);
      root.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y, y2: y, class: "grid" }));
      root.append(svg("text", { x: pad.left - 6, y: y + 4, class: "axis", "text-anchor": "end" },
        `${fraction * 100} %`));
    }
    const x = (i) => pad.left + (plotW * (i + 0.5)) / slices;
    const lines = svg("g");
    const dots = svg("g");
    names.forEach((method, k) => {
      const stroke = STROKES[k % STROKES.length];
      // A slice with nothing finished has no rate: the line breaks there.
      let path = "";
      let drawing = false;
      stats.methods[method].slices.forEach((slice, i) => {
        if (slice.finished === 0) { drawing = false; return; }
        const y = pad.top + plotH * (1 - slice.delivered / slice.finished);
        path += `${drawing ? "L" : "M"}${x(i).toFixed(1)},${y.toFixed(1)} `;
        drawing = true;
        const dot = svg("circle", {
          class: "point", cx: x(i), cy: y, r: stroke.radius, fill: COLOURS[method] || "#888",
          "data-method": method, "data-slice": i,
        });
        dot.append(svg("title", {}, `${method}: ${slice.delivered} of ${slice.finished} delivered`));
        dots.append(dot);
      });
      if (path) {
        lines.append(svg("path", {
          d: path.trim(), class: "rate-line", stroke: COLOURS[method] || "#888",
          "stroke-width": stroke.width, "stroke-dasharray": stroke.dash, "data-method": method,
        }));
      }
    });
    root.append(lines, dots);
    const time = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    root.append(svg("text", { x: pad.left, y: height - pad.bottom + 16, class: "axis" }, time(stats.since)));
    root.append(svg("text", {
      x: width - pad.right, y: height - pad.bottom + 16, class: "axis", "text-anchor": "end",
    }, time(stats.until)));
    // The legend gives each method's share over the whole window: equal lines, told apart.
    const shares = names.map((method) => {
      const { delivered, finished } = stats.methods[method].slices.reduce(
        (sum, slice) => ({
          delivered: sum.delivered + slice.delivered, finished: sum.finished + slice.finished,
        }), { delivered: 0, finished: 0 });
      return finished ? `${Math.round((100 * delivered) / finished)} %` : "—";
    });
    root.append(legend(names, pad.left, height - 8, shares, 150));
    return root;
  }

  // Each method's colour, and its line's dash where the chart has lines (`labels` beside it).
  function legend(names, x, y, labels = null, step = 90) {
    const g = svg("g", { class: "legend" });
    names.forEach((method, k) => {
      const left = x + k * step;
      if (labels) {
        const stroke = STROKES[k % STROKES.length];
        g.append(svg("line", {
          x1: left, x2: left + 24, y1: y - 4, y2: y - 4, stroke: COLOURS[method] || "#888",
          "stroke-width": stroke.width, "stroke-dasharray": stroke.dash,
        }));
      } else {
        g.append(svg("rect", { x: left, y: y - 9, width: 10, height: 10, fill: COLOURS[method] || "#888" }));
      }
      const text = labels ? `${method.toUpperCase()} ${labels[k]}` : method.toUpperCase();
      g.append(svg("text", {
        x: left + (labels ? 30 : 14), y, class: "axis", "data-method": method,
      }, text));
    });
    return g;
  }

  return { histogram, successRate, binLabel, COLOURS };
})();
