"""Runs every benchmark and prints its tables (GitHub markdown).

    python -m benchmarks --quick                 # under 5 minutes on 2 idle cores
    python -m benchmarks --output results.md     # full run, also written to a file
    python -m benchmarks --only overhead,scaling

Each benchmark runs in its own process: the LibMTL comparison sets both frameworks'
thread counts before they start, and the scaling benchmark needs TensorFlow's BFC
CPU allocator (for its memory statistics) from the start.
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time

BENCHMARKS = ("overhead", "libmtl_compare", "scaling")
REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _versions():
    code = ("import keras, tensorflow, numpy; v = ['keras ' + keras.__version__, "
            "'tensorflow ' + tensorflow.__version__, 'numpy ' + numpy.__version__]\n"
            "try:\n import torch; v.append('torch ' + torch.__version__)\nexcept ImportError: pass\n"
            "print(', '.join(v))")
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    return result.stdout.strip() or "unknown"


def main(argv=None):
    parser = argparse.ArgumentParser(description="keras_mtl benchmarks")
    parser.add_argument("--quick", action="store_true", help="less data, fewer rounds and rows")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--output", help="also write the report (markdown) to this file")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = set(chosen) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS}")

    started = time.time()
    header = [
        f"# keras_mtl benchmarks{' (--quick)' if args.quick else ''}",
        "",
        f"- command: `python -m benchmarks {' '.join(argv if argv is not None else sys.argv[1:])}`".rstrip(),
        f"- date: {datetime.datetime.now().isoformat(timespec='minutes')}",
        f"- machine: {platform.machine()}, {os.cpu_count()} CPU(s), load average at start "
        f"{', '.join(f'{v:.1f}' for v in os.getloadavg())}",
        f"- software: Python {platform.python_version()}, {_versions()}",
    ]
    report = ["\n".join(header)]
    print(report[0], flush=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=os.pathsep.join(
        p for p in (REPOSITORY, os.environ.get("PYTHONPATH")) if p))
    failed = []
    for name in chosen:
        command = [sys.executable, "-m", f"benchmarks.{name}"] + (["--quick"] if args.quick else [])
        clock = time.time()
        process = subprocess.Popen(command, cwd=REPOSITORY, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        kept = []
        for line in process.stdout:
            print(line, end="", flush=True)
            # Tables, headings and notes; progress lines and library logs stay on screen.
            line = line.rstrip("\n")
            if line.startswith("#"):
                kept += ["", line, ""]
            elif line.startswith(("|", "LibMTL comparison not run", "keras_mtl weighting modules")):
                kept.append(line)
        if process.wait():
            failed.append(name)
            kept.append(f"\n{name} FAILED (exit status {process.returncode})")
        kept.append(f"\n_{name}: {time.time() - clock:.0f} s_")
        report.append("\n".join(kept).strip("\n"))
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    report.append(f"Total {time.time() - started:.0f} s; load average at the end {load}.")
    if args.output:
        with open(args.output, "w") as f:
            f.write("\n\n".join(report) + "\n")
    print(f"\n{report[-1]}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
