/* The dashboard: renders the snapshot the page was served with, then polls the JSON
 * endpoint and renders again. All text comes from the page's message catalog (boot.messages)
 * and goes into the DOM as text, never as HTML. */
(function () {
  "use strict";
  var boot = JSON.parse(document.getElementById("dashboard-boot").textContent);
  var M = boot.messages;
  var locale = boot.lang === "id" ? "id-ID" : "en-GB";
  var num = new Intl.NumberFormat(locale, {maximumFractionDigits: 1});
  var timeFmt = new Intl.DateTimeFormat(locale, {hour: "2-digit", minute: "2-digit", timeZone: boot.zone});
  var dayFmt = new Intl.DateTimeFormat(locale, {day: "numeric", month: "short", timeZone: "UTC"});
  var stampFmt = new Intl.DateTimeFormat(locale, {hour: "2-digit", minute: "2-digit", second: "2-digit", timeZone: boot.zone});

  function msg(key, values) {
    var text = M[key] || key;
    Object.keys(values || {}).forEach(function (k) { text = text.split("{" + k + "}").join(values[k]); });
    return text;
  }
  function fmt(n) { return n === null || n === undefined ? "–" : num.format(n); }
  function day(iso) { return dayFmt.format(new Date(iso + "T00:00:00Z")); }
  function node(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  function table(columns, rows, testid) {
    var t = node("table", "table");
    if (testid) t.setAttribute("data-testid", testid);
    var head = t.createTHead().insertRow();
    columns.forEach(function (c) { head.appendChild(node("th", c.num ? "num" : "", msg(c.label))); });
    var body = t.createTBody();
    rows.forEach(function (r) {
      var tr = body.insertRow();
      columns.forEach(function (c) {
        var td = tr.insertCell();
        var v = c.value(r);
        if (v instanceof Node) td.appendChild(v); else td.textContent = v;
        if (c.num) td.className = "num";
        if (c.key) td.setAttribute("data-key", c.key(r));
      });
    });
    return t;
  }
  function body(name) { return document.querySelector('[data-panel="' + name + '"] .panel-body'); }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); return e; }
  function state(e, panel) {
    if (panel.state === "ok") return true;
    if (panel.state === "error") {
      var p = node("p", "panel-error", msg("js.error"));
      p.title = panel.error || "";
      e.appendChild(p);
    } else {
      e.appendChild(node("p", "no-data", msg("js.no_data")));
    }
    e.setAttribute("data-state", panel.state);
    return false;
  }
  function bind(path, value) {
    document.querySelectorAll('[data-bind="' + path + '"]').forEach(function (e) { e.textContent = value; });
  }
  function badge(up) { return node("span", "badge " + (up ? "badge-up" : "badge-down"), msg(up ? "js.up" : "js.down")); }

  function opdSeries(entries) {
    var opds = {};
    entries.forEach(function (e) { Object.keys(e[1]).forEach(function (o) { opds[o] = true; }); });
    return Object.keys(opds).sort().map(function (o) {
      return {name: o, values: entries.map(function (e) { return e[1][o] || 0; })};
    });
  }

  function render(snapshot) {
    var P = snapshot.panels;
    var integ = P.integration, traffic = P.traffic, dlq = P.dead_letters;
    var i = integ.data;
    bind("integration.integrated", i ? fmt(i.integrated) : "–");
    bind("integration.total", i ? fmt(i.total) : "–");
    document.querySelectorAll('[data-bind-text="integration.window"]').forEach(function (e) {
      e.textContent = i ? msg("js.window", {days: i.window_days}) : "";
    });
    bind("traffic.last_minute_total", traffic.state === "ok" ? fmt(traffic.data.last_minute_total) : "–");
    bind("traffic.total_24h", traffic.state === "ok" ? fmt(traffic.data.total_24h) : "–");
    bind("dead_letters.total_24h", dlq.state === "ok" ? fmt(dlq.data.total_24h) : (dlq.state === "no_data" ? fmt(0) : "–"));

    var e = clear(body("integration_opd"));
    if (state(e, integ)) {
      e.appendChild(table([
        {label: "js.col.opd", value: function (r) { return r.name + " (" + r.opd + ")"; }, key: function (r) { return r.opd; }},
        {label: "js.col.apps", num: true, value: function (r) { return fmt(r.applications); }},
        {label: "js.col.integrated", num: true, value: function (r) { return fmt(r.integrated); }}
      ], i.per_opd, "integration-per-opd"));
    }
    e = clear(body("integration_history"));
    if (state(e, integ)) {
      LintasChart.line(e, {title: msg("js.chart.integrated"), labels: i.history.map(function (h) { return day(h[0]); }),
                           values: i.history.map(function (h) { return h[1]; }), format: fmt});
    }
    e = clear(body("traffic_minute"));
    if (state(e, traffic)) {
      var pm = traffic.data.per_minute;
      LintasChart.bars(e, {title: msg("js.chart.minute"), labels: pm.map(function (m) { return timeFmt.format(new Date(m[0])); }),
                           series: opdSeries(pm), format: fmt, legend: true});
    }
    e = clear(body("traffic_day"));
    if (state(e, traffic)) {
      var pd = traffic.data.per_day;
      LintasChart.bars(e, {title: msg("js.chart.day"), labels: pd.map(function (d) { return day(d[0]); }),
                           series: opdSeries(pd), format: fmt, legend: true});
    }
    e = clear(body("traffic_types"));
    if (state(e, traffic)) {
      e.appendChild(table([
        {label: "js.col.opd", value: function (r) { return r.opd; }},
        {label: "js.col.event_type", value: function (r) { return r.event_type; }, key: function (r) { return r.event_type; }},
        {label: "js.col.accepted", num: true, value: function (r) { return fmt(r.accepted); }},
        {label: "js.col.dead_lettered", num: true, value: function (r) { return fmt(r.dead_lettered); }},
        {label: "js.col.duplicate", num: true, value: function (r) { return fmt(r.duplicate); }}
      ], traffic.data.by_type_24h, "traffic-by-type"));
    }
    e = clear(body("dead_letters"));
    if (state(e, dlq)) {
      LintasChart.bars(e, {title: msg("js.by_reason"), labels: dlq.data.by_reason.map(function (r) { return r[0]; }),
                           series: [{name: msg("js.col.count"), values: dlq.data.by_reason.map(function (r) { return r[1]; })}], format: fmt});
      e.appendChild(table([
        {label: "js.col.reason", value: function (r) { return r[0]; }, key: function (r) { return r[0]; }},
        {label: "js.col.count", num: true, value: function (r) { return fmt(r[1]); }}
      ], dlq.data.by_reason, "dead-letters-by-reason"));
      e.appendChild(table([
        {label: "js.col.opd", value: function (r) { return r[0]; }},
        {label: "js.col.count", num: true, value: function (r) { return fmt(r[1]); }}
      ], dlq.data.by_opd));
    }
    e = clear(body("lag"));
    if (state(e, P.lag)) {
      e.appendChild(table([
        {label: "js.col.group", value: function (r) { return r.group; }, key: function (r) { return r.group; }},
        {label: "js.col.lag", num: true, value: function (r) { return fmt(r.lag); }},
        {label: "js.col.topics", value: function (r) { return r.topics.length > 3 ? r.topics.slice(0, 3).join(", ") + " …" : r.topics.join(", "); }}
      ], P.lag.data, "lag-table"));
    }
    e = clear(body("delivery"));
    if (state(e, P.delivery)) {
      e.appendChild(table([
        {label: "js.col.subscriber", value: function (r) { return r.subscriber; }, key: function (r) { return r.subscriber; }},
        {label: "js.col.status", value: function (r) { return msg("js.substatus." + r.status); }},
        {label: "js.col.routed", num: true, value: function (r) { return fmt(r.routed); }},
        {label: "js.col.backlog", num: true, value: function (r) { return r.backlog === null ? msg("js.not_consumed") : fmt(r.backlog); }},
        {label: "js.col.failed", num: true, value: function (r) { return fmt(r.failed); }}
      ], P.delivery.data, "delivery-table"));
    }
    e = clear(body("freshness"));
    if (state(e, P.freshness)) {
      var f = P.freshness.data;
      var dl = node("dl", "facts");
      [["js.freshness.age", f.newest_stored_age_s === null ? "–" : msg("js.seconds", {n: fmt(f.newest_stored_age_s)})],
       ["js.freshness.backlog", fmt(f.backlog)], ["js.freshness.topics", fmt(f.topics)]].forEach(function (kv) {
        dl.appendChild(node("dt", "", msg(kv[0]))); dl.appendChild(node("dd", "", kv[1]));
      });
      e.appendChild(dl);
    }
    e = clear(body("health"));
    if (state(e, P.health)) {
      e.appendChild(table([
        {label: "js.col.component", value: function (r) { return msg("js.component." + r.name); }, key: function (r) { return r.name; }},
        {label: "js.col.state", value: function (r) { return badge(r.up); }},
        {label: "js.col.latency", num: true, value: function (r) { return r.latency_ms === null ? "–" : fmt(r.latency_ms) + " ms"; }},
        {label: "js.col.detail", value: function (r) {
          if (!r.up || r.count === null) return r.detail;
          return msg("js.probe." + r.name, {n: fmt(r.count)});
        }}
      ], P.health.data.probes, "health-table"));
    }
    var updated = document.querySelector('[data-testid="updated"]');
    updated.textContent = msg("js.updated", {time: stampFmt.format(new Date(snapshot.generated_at))});
    updated.classList.remove("stale");
    document.body.setAttribute("data-rendered", snapshot.generated_at);
  }

  function poll() {
    fetch(boot.endpoint, {credentials: "same-origin", headers: {"Accept": "application/json"}})
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); throw new Error("signed out"); }
        if (!r.ok) throw new Error("HTTP " + r.status);
        return r.json();
      })
      .then(render)
      .catch(function () {
        var updated = document.querySelector('[data-testid="updated"]');
        updated.textContent = msg("js.stale");
        updated.classList.add("stale");
      })
      .then(function () { window.setTimeout(poll, boot.refresh_ms); });
  }

  render(boot.snapshot);
  window.setTimeout(poll, boot.refresh_ms);
})();
