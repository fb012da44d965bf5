// Buttons marked data-once are disabled when their form is submitted, so a double
// click sends one request (the idempotency key makes a second one harmless anyway).
// A static file, not an inline script, so the Content-Security-Policy can forbid those.
document.querySelectorAll("form").forEach(f => f.addEventListener("submit", () => {
  f.querySelectorAll("button[data-once]").forEach(b => {
    b.disabled = true;
    if (b.dataset.sendingLabel) b.textContent = b.dataset.sendingLabel;
  });
}));
