"""The plot of a run, bench/results/latest.png: req/s and p99 per strategy, the writer's orders/s."""


def plot(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["strategies"])
    rps = [results["strategies"][n]["rps"] or 0 for n in names]
    p99 = [results["strategies"][n]["p99_ms"] or 0 for n in names]
    colours = [
        "#888888"
        if n == "ceiling"
        else "#c0392b"
        if n == "naive"
        else "#2e86c1"
        if n.startswith("seckill")
        else "#7d6608"
        for n in names
    ]
    runs = (results.get("writer") or {}).get("runs") or []
    panels = 3 if runs else 2
    fig, axes = plt.subplots(1, panels, figsize=(5 * panels, 4.8), gridspec_kw={"width_ratios": [3, 3, 1][:panels]})
    ax1, ax2 = axes[0], axes[1]
    ax1.bar(names, rps, color=colours)
    ax1.set_title("requests/s (higher is better)")
    for i, v in enumerate(rps):
        ax1.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    ax2.bar(names, p99, color=colours)
    ax2.set_title("p99 latency, ms (lower is better)")
    for i, v in enumerate(p99):
        ax2.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    naive = results["strategies"].get("naive")
    if naive and naive.get("oversold"):
        i = names.index("naive")
        ax1.text(
            i,
            rps[i] * 0.5,
            f"oversold\n{naive['oversold']}",
            ha="center",
            color="white",
            fontsize=8,
            fontweight="bold",
        )
    if runs:
        ax3 = axes[2]
        labels = [f"{r['writers']} writer{'s' if r['writers'] > 1 else ''}" for r in runs]
        values = [r["orders_per_s"] or 0 for r in runs]
        ax3.bar(labels, values, color="#1e8449")
        ax3.axhline(10_000, color="#555555", linestyle="--", linewidth=1)
        ax3.set_title(f"writer: orders/s ({runs[0]['intents']:,} intents)", fontsize=9)
        for i, v in enumerate(values):
            ax3.text(i, v, f"{v:,.0f}", ha="center", va="bottom", fontsize=8)
    for ax in axes:
        ax.tick_params(axis="x", labelrotation=30, labelsize=8)
        ax.grid(axis="y", alpha=0.3)
    m, s = results["machine"], results["settings"]
    fig.suptitle(
        f"Flash-sale purchase path, {s['scenario']['stock']:,} units / {s['scenario']['customers']:,} customers / "
        f"limit 1, {s['load']['connections']} connections — {m['cores']} cores, gunicorn {s['gunicorn']['workers']}"
        f" x {s['gunicorn']['worker_class']}"
        + (f" x {s['gunicorn']['threads']}" if s["gunicorn"]["worker_class"] == "gthread" else "")
        + f", {s['mode']} run {results['generated_at'][:16]}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
