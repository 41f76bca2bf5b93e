"""Run the benchmark suite and turn its results into the tables the README quotes.

Usage: python tools/bench_report.py [--from-json build/bench/results.json] [-- PYTEST_ARGS...]

Everything is measured in one run on this machine, side by side, and reported as
medians (p99 where latency matters) and ratios to HF `tokenizers`, since absolute
numbers on a shared 2-core machine move from run to run while ratios mostly do not.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "build" / "bench"


def run_benchmarks(json_path: Path, pytest_args: list[str]) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "pytest", "tests/benchmarks", "-o", "addopts=-ra", "--benchmark-only",
        f"--benchmark-json={json_path}", "-q", *pytest_args,
    ]
    # HF tokenizers runs on one thread, as the component does.
    env = {**os.environ, "RAYON_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    subprocess.run(command, cwd=ROOT, check=True, env=env)


def _param(bench: dict, name: str) -> str:
    return str((bench.get("params") or {}).get(name, ""))


def _p99(bench: dict) -> float:
    data = sorted(bench["stats"].get("data") or [bench["stats"]["max"]])
    return data[min(len(data) - 1, int(round(0.99 * (len(data) - 1))))]


def _mb_per_s(bench: dict) -> float:
    return bench["extra_info"]["bytes"] / bench["stats"]["median"] / 1e6


def _tokens(rows: list[dict]) -> str:
    """The token count every engine of a group got, or each engine's when they differ."""
    counts = {_param(b, "engine"): b["extra_info"]["tokens"] for b in rows}
    if len(set(counts.values())) == 1:
        return f"{next(iter(counts.values())):,}"
    return "differ: " + ", ".join(f"{engine} {count:,}" for engine, count in counts.items())


def render(results: dict) -> str:
    benches = results["benchmarks"]
    by_group: dict[str, list[dict]] = {}
    for bench in benches:
        by_group.setdefault(bench["group"] or "", []).append(bench)
    lines = [f"Machine: {results['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
             f"{results['machine_info'].get('cpu', {}).get('count', '?')} cores; "
             f"run {results.get('datetime', '')[:19]} UTC", ""]

    for group in sorted(g for g in by_group if g.startswith("throughput")):
        rows = by_group[group]
        hf = next((_mb_per_s(b) for b in rows if _param(b, "engine") == "hf"), None)
        lines += [f"#### {group[len('throughput: '):]}", "",
                  "| engine | median time | throughput | vs HF native |", "|---|---:|---:|---:|"]
        for bench in sorted(rows, key=_mb_per_s, reverse=True):
            rate = _mb_per_s(bench)
            ratio = f"{rate / hf:.2f}×" if hf else "–"
            lines.append(f"| {_param(bench, 'engine')} | {bench['stats']['median']:.2f} s | {rate:.2f} MB/s | {ratio} |")
        lines.append("")

    every: dict[str, dict[str, list[dict]]] = {}  # corpus -> model -> its benchmarks, in the order run
    for group, rows in by_group.items():
        if group.startswith("every model: "):
            corpus, model = group[len("every model: "):].split(": ")
            every.setdefault(corpus, {})[model] = rows
    for corpus, models in every.items():
        lines += [f"#### Every model, {corpus}", "",
                  "| model | family | HF native | Python native | component | Python vs HF | component vs HF | tokens |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for model, rows in models.items():
            rates = {_param(b, "engine"): _mb_per_s(b) for b in rows}
            if {"hf", "python-native", "component"} <= rates.keys():
                lines.append(f"| {model} | {rows[0]['extra_info']['family']} | {rates['hf']:.2f} MB/s | "
                             f"{rates['python-native']:.2f} MB/s | {rates['component']:.2f} MB/s | "
                             f"{rates['python-native'] / rates['hf']:.2f}× | {rates['component'] / rates['hf']:.2f}× | "
                             f"{_tokens(rows)} |")
        lines.append("")

    for group in sorted(g for g in by_group if g.startswith("latency")):
        title = "Latency" + group[len("latency"):].replace(":", ",", 1)
        lines += [f"#### {title}", "", "| what | p50 | p99 | rounds |", "|---|---:|---:|---:|"]
        for bench in by_group[group]:
            lines.append(f"| {bench['name']} | {bench['stats']['median'] * 1e3:.2f} ms | "
                         f"{_p99(bench) * 1e3:.2f} ms | {bench['stats']['rounds']} |")
        lines.append("")

    for group in sorted(g for g in by_group if g.startswith("load")):
        lines += [f"#### {group[len('load: '):].capitalize()}", "",
                  "| route | requests/s | p50 | p99 |", "|---|---:|---:|---:|"]
        for bench in by_group[group]:
            info = bench["extra_info"]
            lines.append(f"| {_param(bench, 'route')} | {info['requests_per_s']:.1f} | {info['p50_ms']:.1f} ms | "
                         f"{info['p99_ms']:.1f} ms |")
        lines.append("")

    boundary = by_group.get("boundary: 5,000 ids")
    if boundary:
        lines += ["#### Passing 5,000 token ids across the boundary", "",
                  "| path | median |", "|---|---:|"]
        for bench in sorted(boundary, key=lambda b: b["stats"]["median"]):
            lines.append(f"| {bench['name']} | {bench['stats']['median'] * 1e6:.0f} µs |")
        lines.append("")

    worst = sorted(g for g in by_group if g.startswith("worst case"))
    if worst:
        lines += ["#### 1 MB without whitespace vs 1 MB of ordinary text (Llama 3.2)", "",
                  "| engine | input | median | vs ordinary text |", "|---|---|---:|---:|"]
        for group in worst:
            rows = by_group[group]
            ordinary = next((b["stats"]["median"] for b in rows if _param(b, "kind") == "ordinary text"), None)
            for bench in sorted(rows, key=lambda b: b["stats"]["median"]):
                ratio = f"{bench['stats']['median'] / ordinary:.2f}×" if ordinary else "–"
                lines.append(f"| {group[len('worst case: '):]} | {_param(bench, 'kind')} | "
                             f"{bench['stats']['median']:.2f} s | {ratio} |")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-json", type=Path, help="render an earlier run instead of running")
    parser.add_argument("pytest_args", nargs="*", help="passed to pytest (after --)")
    args = parser.parse_args(argv)
    json_path = args.from_json or OUT / "results.json"
    if not args.from_json:
        run_benchmarks(json_path, args.pytest_args)
    report = render(json.loads(json_path.read_text()))
    (OUT / "report.md").write_text(report + "\n")
    print(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
