"""Where the operator's CPU goes: a py-spy profile of every operator a benchmark starts.

`python -m bench.profile NAME -- COMMAND...` runs COMMAND (a benchmark, of this checkout or of
another: `git worktree` and PYTHONPATH give a profile of an older commit), attaches py-spy to
each operator process (`-m collectionflow run`) as it appears, without pausing it, and records
until it exits. Then it sums the samples: by area (the package of the innermost frame: JSON,
the HTTP client, pydantic, the database, the event loop, the operator's own modules) and the
operator's own functions, inclusive. py-spy samples only threads that run (less the waits in
`WAITS`, which it counts on a busy machine), so the shares are shares of CPU time. py-spy
takes CPU of its own: a profiled run's timings are not the benchmark's figures. Writes
bench/results/profile-NAME.txt (the raw stacks) and .json.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

from bench.common import RESULTS

PY_SPY = str(Path(sys.executable).with_name("py-spy"))
OPERATOR = re.compile(rb"-m\x00collectionflow\x00run\x00")
# Innermost frames that wait, not work: the event loop's epoll and the SQLite thread's queue.
# On a busy machine a thread woken from a wait is runnable before it runs, and py-spy counts it.
WAITS = re.compile(
    r"^(EpollSelector\.select \(selectors\.py:468\)"
    r"|_connection_worker_thread \(aiosqlite/core\.py:59\))$"
)
FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^:]*)(?::\d+)?\)$")
AREAS = (  # the first that a frame's file path holds names its area
    ("json", "/json/"),
    ("pydantic", "/pydantic"),
    ("http client (aiohttp, ssl)", "/aiohttp/"),
    ("http client (aiohttp, ssl)", "/ssl.py"),
    ("http client (aiohttp, ssl)", "/yarl/"),
    ("http client (aiohttp, ssl)", "/multidict/"),
    ("kubernetes client", "/kubernetes_asyncio/"),
    ("database", "/sqlalchemy/"),
    ("database", "/aiosqlite/"),
    ("database", "/asyncpg/"),
    ("database", "/sqlite3/"),
    ("metrics", "/prometheus_client/"),
    ("logging", "/logging/"),
    ("kopf", "/kopf/"),
    ("event loop", "/asyncio/"),
    ("event loop", "/selectors.py"),
)


def operators() -> set[int]:
    found = set()
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if OPERATOR.search(cmdline.read_bytes()):
                found.add(int(cmdline.parent.name))
        except OSError:
            continue
    return found


def record(command: list[str], raw: Path) -> int:
    """Run `command`, profiling every operator it starts into `raw`; its exit code."""
    run = subprocess.Popen(command)
    recorders: dict[int, tuple[subprocess.Popen[bytes], Path]] = {}
    while run.poll() is None:
        for pid in operators() - set(recorders):
            out = raw.with_suffix(f".{pid}.txt")
            spy = [PY_SPY, "record", "--pid", str(pid), "--rate", "100", "--nonblocking"]
            spy += ["--format", "raw", "--output", str(out)]
            recorders[pid] = (subprocess.Popen(spy, stdout=subprocess.DEVNULL), out)
        time.sleep(0.2)  # polling /proc for a process to appear: nothing to wait on
    with raw.open("w") as merged:
        for recorder, out in recorders.values():
            recorder.wait(30)
            if out.exists():
                merged.write(out.read_text())
                out.unlink()
    return run.returncode


def area(file: str) -> str:
    if "/collectionflow/" in file:
        return "operator: " + file.split("/collectionflow/", 1)[1].removesuffix(".py")
    return next((name for name, marker in AREAS if marker in file), "other")


def summary(raw: Path, top: int = 25) -> dict[str, object]:
    """The samples by area of their innermost frame, and the operator's functions inclusive."""
    by_area: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        samples = int(count)
        if WAITS.match(stack.rsplit(";", 1)[-1]):
            continue
        total += samples
        frames = [FRAME.match(frame) for frame in stack.split(";")]
        # py-spy names a file from its package root: "/" makes "collectionflow/..." a path part
        parsed = [(m["function"], "/" + m["file"]) for m in frames if m is not None]
        if parsed:
            by_area[area(parsed[-1][1])] += samples
        seen = {
            f"{area(file).removeprefix('operator: ')}.{function}"
            for function, file in parsed
            if "/collectionflow/" in file
        }
        for name in seen:
            own[name] += samples

    def shares(counter: Counter[str]) -> dict[str, float]:
        return {name: round(100 * n / total, 1) for name, n in counter.most_common(top)}

    return {
        "samples": total,
        "self_by_area_pct": shares(by_area),
        "operator_inclusive_pct": shares(own),
    }


def main() -> int:
    name, separator, *command = sys.argv[1:]
    if separator != "--" or not command:
        print("usage: python -m bench.profile NAME -- COMMAND...", file=sys.stderr)
        return 2
    RESULTS.mkdir(parents=True, exist_ok=True)
    raw = RESULTS / f"profile-{name}.txt"
    code = record(command, raw)
    result = summary(raw)
    (RESULTS / f"profile-{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    return code


if __name__ == "__main__":
    sys.exit(main())
