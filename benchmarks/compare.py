"""`--compare old.json new.json`: which cases got faster or slower between two runs."""
import json

from benchmarks.report import _table, fmt_time

# A change counts only if it exceeds this factor and the two runs' IQRs do not overlap.
THRESHOLD = 1.05


def load(path: str) -> dict:
    """Timed results of a run, keyed by (workload, case, system)."""
    with open(path) as f:
        payload = json.load(f)
    return {(r["workload"], r["case"], r["system"]): r for r in payload["results"]
            if r.get("stats")}


def verdict(old: dict, new: dict) -> tuple[float, str]:
    """(old median / new median, 'faster' | 'slower' | 'same')."""
    a, b = old["stats"], new["stats"]
    speedup = a["median"] / b["median"]
    apart = b["q75"] < a["q25"] or b["q25"] > a["q75"]
    if apart and speedup > THRESHOLD:
        return speedup, "faster"
    if apart and speedup < 1 / THRESHOLD:
        return speedup, "slower"
    return speedup, "same"


def compare_runs(old_path: str, new_path: str) -> str:
    """A markdown report of the cases both runs timed, slowest-changed last."""
    old, new = load(old_path), load(new_path)
    rows, counts = [], {"faster": 0, "slower": 0, "same": 0}
    for key in [k for k in new if k in old]:
        speedup, word = verdict(old[key], new[key])
        counts[word] += 1
        r_old, r_new = old[key]["ratio_vs_reference"], new[key]["ratio_vs_reference"]
        vs_ref = ("n/a" if r_old is None or r_new is None else f"{r_old:.2f} -> {r_new:.2f}")
        rows.append((speedup, [*key, fmt_time(old[key]["stats"]["median"]),
                               fmt_time(new[key]["stats"]["median"]), f"{speedup:.2f}x",
                               word, vs_ref]))
    rows.sort(key=lambda r: -r[0])
    lines = [f"## {new_path} against {old_path}", "",
             f"{counts['faster']} faster, {counts['slower']} slower, {counts['same']} within noise "
             f"(a change counts when it exceeds {THRESHOLD}x and the IQRs do not overlap)", ""]
    lines.append(_table(["workload", "case", "system", "old median", "new median", "speed-up",
                         "verdict", "x faster than reference (old -> new)"],
                        [r for _, r in rows], right={3, 4, 5}) if rows else "(no case timed in both)")
    only_old = sorted(" / ".join(k) for k in old if k not in new)
    only_new = sorted(" / ".join(k) for k in new if k not in old)
    if only_old:
        lines += ["", "Only in the old run: " + "; ".join(only_old)]
    if only_new:
        lines += ["", "Only in the new run: " + "; ".join(only_new)]
    return "\n".join(lines)
