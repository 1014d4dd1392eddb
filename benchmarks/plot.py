"""PNG plot of each system's speed relative to torch eager, per workload and case."""


def plot_ratios(results: list[dict], reference: str, path: str, title: str) -> str | None:
    """Draw grouped bars (log scale) of ratio_vs_reference; return the path, or why not drawn."""
    try:
        import matplotlib
        matplotlib.use("Agg")  # no display needed; must precede pyplot
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return None
    groups, systems = [], []
    for r in results:
        if r.get("ratio_vs_reference") is None:
            continue
        key = (r["workload"], r["case"])
        if key not in groups:
            groups.append(key)
        if r["system"] != reference and r["system"] not in systems:
            systems.append(r["system"])
    ratio = {(r["workload"], r["case"], r["system"]): r["ratio_vs_reference"] for r in results
             if r.get("ratio_vs_reference") is not None}
    width = 0.8 / max(len(systems), 1)
    fig, ax = plt.subplots(figsize=(max(8, 1.1 * len(groups) + 2), 5.5))
    for k, system in enumerate(systems):
        xs = [i + (k - (len(systems) - 1) / 2) * width for i, g in enumerate(groups)
              if (*g, system) in ratio]
        ys = [ratio[(*g, system)] for g in groups if (*g, system) in ratio]
        # Bars start at 1 (parity), so slower-than-reference bars hang down.
        bars = ax.bar(xs, [y - 1 for y in ys], width, bottom=1, label=system)
        for x, y in zip(xs, ys):
            ax.annotate(f"{y:.2g}", (x, y), ha="center",
                        va="bottom" if y >= 1 else "top", fontsize=6, rotation=90,
                        xytext=(0, 2 if y >= 1 else -2), textcoords="offset points")
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{w}\n{c}" for w, c in groups], fontsize=7)
    ax.set_ylabel(f"times faster than {reference} (log scale; > 1 is faster)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
