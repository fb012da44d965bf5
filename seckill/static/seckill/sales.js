// Sale cards (home page, flash-sales page): live countdown, status and stock bar.
// A static file (the Content-Security-Policy forbids inline scripts); each card
// carries what it needs in data-* attributes. The countdown runs on the server's
// clock, as on the sale page (seckill/static/seckill/sale.js): the page brings the
// server time, each poll of the list API refreshes it, and the browser's clock only
// measures the time elapsed since.
(() => {
  const cards = Array.from(document.querySelectorAll("[data-sale][data-starts]"));
  if (!cards.length) return;
  let offset = Number(cards[0].dataset.serverMs) - Date.now();
  const label = {live: "Live", upcoming: "Upcoming", sold_out: "Sold out", ended: "Ended"};
  const fmt = ms => {
    const s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return (d ? d + "d " : "") + String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0") + ":" + String(r).padStart(2, "0");
  };

  function render(card) {
    const starts = Number(card.dataset.starts), ends = Number(card.dataset.ends), total = Number(card.dataset.total);
    const remaining = Math.max(0, Number(card.dataset.remaining));
    const now = Date.now() + offset;
    const state = card.dataset.status === "ended" || now >= ends ? "ended"
      : now < starts ? "upcoming" : remaining <= 0 ? "sold_out" : "live";
    const sold = total - remaining;
    const status = card.querySelector(".js-status");
    status.textContent = label[state];
    status.className = "sale-status status-" + state + " js-status";
    card.querySelector(".js-stock").textContent = state === "ended" ? sold + " of " + total + " sold" : remaining + " of " + total + " left";
    const bar = card.querySelector(".js-bar");
    bar.classList.toggle("ended", state === "ended");
    bar.setAttribute("aria-valuenow", String(sold));
    card.querySelector(".js-bar-fill").style.width = (total ? Math.round(100 * sold / total) : 0) + "%";
    const countdown = card.querySelector(".js-countdown");
    if (state === "upcoming") countdown.textContent = "starts in " + fmt(starts - now);
    else if (state !== "ended") countdown.textContent = "ends in " + fmt(ends - now);
    else if (card.dataset.status !== "ended") countdown.textContent = "ended";
  }

  async function poll() {
    const sent = Date.now();
    try {
      const r = await fetch("/api/seckill/activities/", {headers: {Accept: "application/json"}, cache: "no-store"});
      if (!r.ok) return;
      const sales = await r.json();
      offset = sales.length ? Date.parse(sales[0].server_time) - (sent + Date.now()) / 2 : offset;
      const byId = new Map(sales.map(s => [String(s.id), s]));
      cards.forEach(card => {
        const sale = byId.get(card.dataset.sale);
        if (!sale) return;
        card.dataset.remaining = String(sale.stock_remaining);
        if (sale.status === "ended") card.dataset.status = "ended";
      });
    } catch (e) { /* keep the last known figures */ }
  }

  const tick = () => cards.forEach(render);
  tick();
  setInterval(tick, 1000);
  if (cards.some(c => c.dataset.status !== "ended")) {
    poll();
    setInterval(poll, 5000);
  }
})();
