// The polling loop of the staff pages that refresh themselves (the sale list,
// seckill/static/seckill/sale_list.js; the live monitor, monitor.js): GET `url` as JSON,
// hand each answer to `render`, call `onError` when a poll fails, and start the next poll
// `everyMs` after this one ended, so a slow server is never asked twice at once.
window.seckillPoll = function (url, everyMs, render, onError) {
  "use strict";
  function poll() {
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.json();
      })
      .then(render)
      .catch(onError)
      .then(function () { window.setTimeout(poll, everyMs); });
  }
  return poll;
};
