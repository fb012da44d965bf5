// The sale page: countdown, live stock, buy button and purchase token.
// A static file (no inline script), so the Content-Security-Policy can forbid inline
// scripts. Everything the script needs is in data-* attributes of #sale.
(() => {
  // The countdown runs on the server's clock: the page carries the server time at
  // render, every poll of the API brings a fresh one, and the browser's clock is only
  // used to measure the time elapsed since.
  const el = document.getElementById("sale");
  if (!el) return;
  const starts = Number(el.dataset.starts), ends = Number(el.dataset.ends), total = Number(el.dataset.total);
  let offset = Number(el.dataset.serverMs) - Date.now();
  let remaining = Number(el.dataset.remaining);
  const limitReached = el.dataset.limitReached === "1";  // the customer holds the sale's limit
  const buy = document.getElementById("buy");
  const form = document.getElementById("buy-form");
  const tokenField = form ? form.querySelector("input[name=purchase_token]") : null;
  const countdown = document.getElementById("countdown");
  const status = document.querySelector("[data-testid=sale-status]");
  const fmt = ms => {
    const s = Math.max(0, Math.floor(ms / 1000));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return (d ? d + "d " : "") + String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0") + ":" + String(r).padStart(2, "0");
  };
  const label = {live: "Live", upcoming: "Upcoming", sold_out: "Sold out", ended: "Ended"};

  // Purchase token (when the shop requires one): the server hands it out only shortly
  // before the start, so the page asks for it when the countdown gets there, and again
  // before it gets old. Until the page holds one, the button stays disabled.
  const tokenUrl = el.dataset.tokenUrl;
  const tokenLead = Number(el.dataset.tokenLeadMs || 0);
  const tokenMaxAge = Number(el.dataset.tokenMaxAgeMs || 0);
  let tokenAt = tokenField && tokenField.value ? Date.now() : 0;
  let tokenPending = false;
  let tokenRetryAt = 0;
  const needsToken = () => Boolean(tokenField && tokenUrl);
  const hasToken = () => !needsToken() || (tokenField.value && Date.now() - tokenAt < tokenMaxAge);
  async function fetchToken() {
    if (tokenPending || Date.now() < tokenRetryAt) return;
    tokenPending = true;
    try {
      const r = await fetch(tokenUrl, {headers: {Accept: "application/json"}, cache: "no-store", credentials: "same-origin"});
      if (r.ok) {
        const body = await r.json();
        tokenField.value = body.token;
        tokenAt = Date.now();
      } else {
        tokenRetryAt = Date.now() + 2000;  // too early by the server's clock, or a hiccup
      }
    } catch (e) {
      tokenRetryAt = Date.now() + 2000;
    }
    tokenPending = false;
  }

  function render() {
    const now = Date.now() + offset;
    let state = now < starts ? "upcoming" : now >= ends ? "ended" : remaining <= 0 ? "sold_out" : "live";
    if (el.dataset.status === "ended") state = "ended";
    countdown.textContent = state === "upcoming" ? "Starts in " + fmt(starts - now)
      : state === "ended" ? "This sale has ended."
      : state === "sold_out" ? "Sold out. Units from unpaid orders may come back."
      : "Ends in " + fmt(ends - now);
    status.textContent = label[state];
    status.className = "sale-status status-" + state;
    const left = Math.max(remaining, 0), sold = total - left;
    const stockLine = document.getElementById("stock-line");
    const stockKey = state === "ended" ? "ended:" + sold : "left:" + left;
    if (stockLine.dataset.shown === stockKey) {
      // unchanged since the last tick
    } else if (state === "ended") {
      stockLine.textContent = "Sale ended · " + sold + " of " + total + " sold";
    } else {
      const strong = document.createElement("strong");
      strong.id = "remaining"; strong.dataset.testid = "remaining"; strong.textContent = String(left);
      stockLine.replaceChildren(strong, " of " + total + " left");
    }
    stockLine.dataset.shown = stockKey;
    document.getElementById("bar").classList.toggle("ended", state === "ended");
    document.getElementById("bar").setAttribute("aria-valuenow", String(sold));
    document.getElementById("bar-fill").style.width = (total ? Math.round(100 * sold / total) : 0) + "%";
    if (needsToken() && state !== "ended" && starts - now <= tokenLead
        && (!tokenField.value || Date.now() - tokenAt > tokenMaxAge / 2)) {
      fetchToken();
    }
    if (buy && !buy.dataset.sending) {
      const ready = state === "live" && hasToken() && !limitReached;
      buy.disabled = !ready;
      buy.textContent = ready ? buy.dataset.liveLabel : state === "ended" ? "Sale ended"
        : state === "sold_out" ? "Sold out" : limitReached ? "Limit reached"
        : state === "live" ? "Getting ready…" : "Not started yet";
    }
  }
  if (buy && form) {
    form.addEventListener("submit", () => {
      buy.dataset.sending = "1"; buy.disabled = true; buy.textContent = "Buying…";
    });
  }
  async function poll() {
    const sent = Date.now();
    try {
      const r = await fetch(el.dataset.api, {headers: {Accept: "application/json"}, cache: "no-store"});
      if (r.ok) {
        const body = await r.json();
        const received = Date.now();
        offset = Date.parse(body.server_time) - (sent + received) / 2;
        remaining = body.stock_remaining;
        el.dataset.status = body.status === "ended" ? "ended" : "";
      }
    } catch (e) { /* keep the last known figures */ }
  }
  render();
  setInterval(render, 250);
  poll();
  setInterval(poll, 3000);
})();
