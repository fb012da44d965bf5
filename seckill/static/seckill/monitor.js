// Live sale monitor (seckill/monitor.py): polls the staff-only JSON once a second and
// draws the last five minutes as two SVG polylines. No library, no inline script (CSP).
(function () {
  "use strict";
  var root = document.getElementById("sale-monitor");
  if (!root) return;
  var url = root.getAttribute("data-url");
  var POINTS = 300; // five minutes at one snapshot a second
  var history = [];
  var previous = null;

  function field(name) { return root.querySelector('[data-field="' + name + '"]'); }
  function show(name, value) {
    var el = field(name);
    if (el) el.textContent = value === null || value === undefined ? "—" : String(value);
  }

  function ms(value) { return value < 10 ? value.toFixed(1) + " ms" : Math.round(value) + " ms"; }

  // "ok 12 · sold_out 340 · rate_limited 5": accepted answers first, then refusals by count.
  var ACCEPTED = ["ok", "confirming", "replayed"];
  function codes(el, answers) {
    var names = Object.keys(answers).sort(function (a, b) {
      var ia = ACCEPTED.indexOf(a), ib = ACCEPTED.indexOf(b);
      if (ia !== ib) return (ia === -1 ? 99 : ia) - (ib === -1 ? 99 : ib);
      return answers[b] - answers[a];
    });
    if (!names.length) { el.textContent = "none yet"; return; }
    el.replaceChildren.apply(el, names.map(function (name) {
      var span = document.createElement("span");
      span.className = "code";
      span.setAttribute("data-code", name);
      var count = document.createElement("b");
      count.textContent = String(answers[name]);
      span.append(name.replace(/_/g, " ") + " ", count);
      return span;
    }));
  }

  function polyline(cls, values, max) {
    var line = root.querySelector("polyline." + cls);
    var step = 600 / (POINTS - 1);
    var offset = POINTS - values.length;
    var points = values.map(function (v, i) {
      var y = max > 0 ? 200 - (v / max) * 190 : 200;
      return ((offset + i) * step).toFixed(1) + "," + y.toFixed(1);
    });
    line.setAttribute("points", points.join(" "));
  }

  function render(data) {
    var now = Date.now();
    var rate = null;
    if (previous && now > previous.at) {
      rate = Math.max(0, (data.orders - previous.orders) / ((now - previous.at) / 1000));
    }
    previous = { at: now, orders: data.orders };
    show("status", data.status.replace("_", " "));
    show("redis_remaining", data.redis_ok ? data.redis_remaining : "Redis unreachable");
    show("db_available", data.db_available);
    show("orders", data.orders);
    show("orders_per_s", rate === null ? null : rate.toFixed(1));
    show("live_paid", data.live_orders + " / " + data.paid_orders);
    show("writer", data.writer_waiting === null ? null :
      data.writer_waiting + (data.writer_waiting ? " (oldest " + data.writer_oldest_s.toFixed(1) + " s)" : ""));
    show("open_reservation_units", data.open_reservation_units);
    var latency = data.latency || {};
    show("latency", latency.p50_ms === null || latency.p50_ms === undefined ? null :
      ms(latency.p50_ms) + " / " + ms(latency.p99_ms));
    show("latency_note", latency.purchases === null || latency.purchases === undefined ? "waiting for a second reading" :
      latency.purchases + " purchases in the last " + latency.window_s + " s");
    codes(field("answers"), data.answers || {});
    var refused = Object.keys(data.refused).map(function (code) { return code + ": " + data.refused[code]; });
    show("refused", refused.length ? refused.join(", ") : "0");
    show("stock_returned", data.stock_returned);
    show("updated", new Date(now).toLocaleTimeString());
    field("updated").classList.remove("monitor-stale");

    history.push({ left: data.redis_remaining || 0, rate: rate || 0 });
    if (history.length > POINTS) history.shift();
    polyline("line-left", history.map(function (p) { return p.left; }), data.stock_total);
    var maxRate = Math.max.apply(null, history.map(function (p) { return p.rate; }).concat([1]));
    polyline("line-rate", history.map(function (p) { return p.rate; }), maxRate);
  }

  var poll = window.seckillPoll(url, 1000, render, function () {
    field("updated").classList.add("monitor-stale");
  });
  poll();
})();
