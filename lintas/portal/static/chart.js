/* Lintas's tiny chart library: bar and line charts as inline SVG, no dependencies.
 *
 *   LintasChart.bars(el, {labels: [...], series: [{name, values: [...]}], format})
 *   LintasChart.line(el, {labels: [...], values: [...], format})
 *
 * Colours come from CSS classes (.series-0 ... .series-7), so the page's Content Security
 * Policy can forbid inline styles. Each chart carries a <title> and an aria-label, and each
 * bar or point a <title> with its value, for screen readers and tooltips.
 */
(function (global) {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";
  var W = 640, H = 220, PAD_L = 48, PAD_R = 12, PAD_T = 12, PAD_B = 36;

  function el(name, attrs, text) {
    var node = document.createElementNS(NS, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function niceMax(value) {
    // Counts are whole numbers: at least 4 so the four grid steps fall on integers.
    if (value <= 4) return 4;
    var exp = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (steps[i] * exp >= value) return steps[i] * exp;
    }
    return 10 * exp;
  }

  function frame(title, max, format) {
    var svg = el("svg", {viewBox: "0 0 " + W + " " + H, role: "img", "aria-label": title,
                         "class": "chart", preserveAspectRatio: "xMidYMid meet"});
    svg.appendChild(el("title", {}, title));
    var plotH = H - PAD_T - PAD_B;
    for (var i = 0; i <= 4; i++) {
      var y = PAD_T + plotH - (plotH * i) / 4;
      svg.appendChild(el("line", {x1: PAD_L, x2: W - PAD_R, y1: y, y2: y, "class": "grid"}));
      svg.appendChild(el("text", {x: PAD_L - 6, y: y + 4, "class": "axis", "text-anchor": "end"},
                         format((max * i) / 4)));
    }
    return svg;
  }

  function xLabels(svg, labels, x, every) {
    var last = labels.length - 1;
    labels.forEach(function (label, i) {
      // Every n-th label and the last one, unless the last would crowd its neighbour.
      if (i !== last && (i % every !== 0 || last - i < every)) return;
      var anchor = i === 0 ? "start" : (i === last ? "end" : "middle");
      svg.appendChild(el("text", {x: x(i), y: H - PAD_B + 16, "class": "axis",
                                  "text-anchor": anchor}, label));
    });
  }

  function bars(container, opts) {
    var labels = opts.labels, series = opts.series, format = opts.format || String;
    var totals = labels.map(function (_, i) {
      return series.reduce(function (sum, s) { return sum + (s.values[i] || 0); }, 0);
    });
    var max = niceMax(Math.max.apply(null, totals.concat([0])));
    var svg = frame(opts.title || "", max, format);
    var plotW = W - PAD_L - PAD_R, plotH = H - PAD_T - PAD_B;
    var slot = plotW / Math.max(labels.length, 1), bw = Math.max(slot * 0.7, 1);
    function x(i) { return PAD_L + slot * i + slot / 2; }
    labels.forEach(function (label, i) {
      var base = PAD_T + plotH;
      series.forEach(function (s, k) {
        var v = s.values[i] || 0;
        if (!v) return;
        var h = (plotH * v) / max;
        base -= h;
        var rect = el("rect", {x: x(i) - bw / 2, y: base, width: bw, height: h,
                               "class": "bar series-" + (k % 8)});
        rect.appendChild(el("title", {}, label + " · " + s.name + ": " + format(v)));
        svg.appendChild(rect);
      });
    });
    xLabels(svg, labels, x, Math.max(1, Math.ceil(labels.length / 8)));
    container.appendChild(svg);
    if (series.length > 1 || opts.legend) legend(container, series);
  }

  function line(container, opts) {
    var labels = opts.labels, values = opts.values, format = opts.format || String;
    var max = niceMax(Math.max.apply(null, values.concat([0])));
    var svg = frame(opts.title || "", max, format);
    var plotW = W - PAD_L - PAD_R, plotH = H - PAD_T - PAD_B;
    function x(i) { return PAD_L + (labels.length > 1 ? (plotW * i) / (labels.length - 1) : plotW / 2); }
    function y(v) { return PAD_T + plotH - (plotH * v) / max; }
    var d = values.map(function (v, i) { return (i ? "L" : "M") + x(i) + " " + y(v); }).join(" ");
    svg.appendChild(el("path", {d: d, "class": "line series-0"}));
    values.forEach(function (v, i) {
      var dot = el("circle", {cx: x(i), cy: y(v), r: 3.5, "class": "dot series-0"});
      dot.appendChild(el("title", {}, labels[i] + ": " + format(v)));
      svg.appendChild(dot);
    });
    xLabels(svg, labels, x, Math.max(1, Math.ceil(labels.length / 7)));
    container.appendChild(svg);
  }

  function legend(container, series) {
    var ul = document.createElement("ul");
    ul.className = "legend";
    series.forEach(function (s, k) {
      var li = document.createElement("li");
      var sw = document.createElement("span");
      sw.className = "swatch series-bg-" + (k % 8);
      li.appendChild(sw);
      li.appendChild(document.createTextNode(s.name));
      ul.appendChild(li);
    });
    container.appendChild(ul);
  }

  global.LintasChart = {bars: bars, line: line};
})(window);
