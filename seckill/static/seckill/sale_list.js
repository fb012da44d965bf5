// Staff sale list (admin changelist of flash sales): refreshes the live cells every 5 s
// from the staff-only live.json (seckill/sale_rows.py). A static file, no inline script,
// so the shop's CSP applies unchanged. Each live cell is <span data-live=NAME data-sale=ID>.
(function () {
  "use strict";
  var root = document.getElementById("sale-list-live");
  if (!root) return;
  var cells = document.querySelectorAll("[data-live][data-sale]");
  var ids = [];
  cells.forEach(function (el) {
    var id = el.getAttribute("data-sale");
    if (ids.indexOf(id) === -1) ids.push(id);
  });
  if (!ids.length) return;
  var url = root.getAttribute("data-url") + "?" + ids.map(function (id) { return "id=" + id; }).join("&");
  var every = Number(root.getAttribute("data-every-ms")) || 5000;
  var updated = document.querySelector("[data-live-updated]");

  function render(data) {
    cells.forEach(function (el) {
      var row = data.sales[el.getAttribute("data-sale")];
      if (!row) return;
      var name = el.getAttribute("data-live");
      if (name === "status") {
        el.className = "sale-status status-" + row.status;
        el.textContent = row.status.replace("_", " ");
      } else if (row[name] !== undefined && el.textContent !== row[name]) {
        el.textContent = row[name];
      }
    });
    if (updated) {
      updated.textContent = "updated " + new Date().toLocaleTimeString();
      updated.classList.remove("sale-list-stale");
    }
  }

  var poll = window.seckillPoll(url, every, render, function () {
    if (updated) updated.classList.add("sale-list-stale");
  });
  window.setTimeout(poll, every);
})();
