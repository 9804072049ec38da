"""Leave-one-out correlation on the host CPU: fit on all workloads but one, test on the one held out.

Expects, in DIR, for each workload W: `W.onnx`, `W.profile.json` (set A, used for fitting and testing)
and optionally `W.p2.profile.json` (set B: the same model profiled again, to show run-to-run noise),
as written by the commands in benchmarks/RESULTS_CORRELATE.md. Prints one markdown row per held-out
(workload, profile set, target) and the means the issue's goals are judged on.

    python benchmarks/correlate_holdout.py DIR [--workloads resnet50,vit-b16,bert-base,gpt2,llama3-8b]
"""

from __future__ import annotations

import argparse
import os
import statistics

from graphperf.calibrate.fit import Case, evaluate, fit_target
from graphperf.target import load_target

WORKLOADS = ("resnet50", "vit-b16", "bert-base", "gpt2", "llama3-8b")


def _pct(x) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir")
    ap.add_argument("--workloads", default=",".join(WORKLOADS))
    args = ap.parse_args()
    names = args.workloads.split(",")
    host = load_target("host")
    cases = {w: Case(os.path.join(args.dir, f"{w}.onnx"), os.path.join(args.dir, f"{w}.profile.json")) for w in names}
    print("| workload (held out) | profile | target | whole-model error | median abs error, rows >= 20 us (rows) "
          "| within 2x | rows |")
    print("|---|---|---|---|---|---|---|")
    summary: dict[str, list[tuple[float, float, float]]] = {"uncalibrated": [], "calibrated": []}
    for held in names:
        _, fitted = fit_target([cases[w] for w in names if w != held], host)
        sets = [("A", cases[held].profile)]
        p2 = os.path.join(args.dir, f"{held}.p2.profile.json")
        if os.path.isfile(p2):
            sets.append(("B", p2))
        for label, prof in sets:
            (entry,) = evaluate([Case(cases[held].model, prof)], [host, fitted])
            for i, kind in enumerate(("uncalibrated", "calibrated")):
                s = entry[i]
                med = s["median_ape_20us"]
                print(f"| {held} | {label} | {kind} | {_pct(s['whole_model_error'])} "
                      f"({1e6 * s['projected_total_s']:.0f} vs {1e6 * s['measured_total_s']:.0f} us) | "
                      f"{'-' if med is None else f'{100 * med:.1f}%'} ({s['rows_20us']}) | "
                      f"{100 * s['within_2x']:.1f}% | {s['rows']} |")
                summary[kind].append((abs(s["whole_model_error"]), med if med is not None else float("nan"),
                                      s["within_2x"]))
    print()
    for kind, vals in summary.items():
        wm, med, w2 = zip(*vals)
        print(f"- {kind}: mean |whole-model error| {100 * statistics.mean(wm):.1f}% (max {100 * max(wm):.1f}%), "
              f"mean median error of >= 20 us rows {100 * statistics.mean(med):.1f}%, "
              f"mean within 2x {100 * statistics.mean(w2):.1f}% (min {100 * min(w2):.1f}%)")


if __name__ == "__main__":
    main()
