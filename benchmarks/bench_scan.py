"""Time ``minewatch scan`` against Suricata 7 (ET Open mining rules) on one large replay capture.

Both tools read the same file in the same run. minewatch and Suricata's ``single`` runmode are
pinned to one core (``taskset -c CPU``) so packets per second are per core; Suricata's default
``autofp`` runmode on all cores is timed as well, for information. Each configuration runs
``--runs`` times, interleaved, and the median wall time of the whole process (start-up, rule
loading and output included: end to end) is reported. A Suricata that is not installed is
reported as skipped, never estimated.

See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

# build_replay puts this checkout's src/ on sys.path, so it must be imported before minewatch.
from build_replay import DEFAULT_CORPUS, build_replay
from minewatch.net.capture.reader import read_capture

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ANCHORS = ROOT.parent / "shared/anchors"
DEFAULT_CACHE = Path("/var/tmp/minewatch-bench")
TARGET_PPS = 1_000_000


@dataclass(slots=True)
class Result:
    """Timings and detections of one tool configuration."""

    name: str
    seconds: list[float] = field(default_factory=list)
    detections: list[int] = field(default_factory=list)
    detection_word: str = "alerts"
    skipped: str | None = None

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


class BenchError(Exception):
    """A tool failed: the benchmark cannot be trusted."""


def _env() -> dict[str, str]:
    """Environment for subprocesses: this checkout's ``src`` first on PYTHONPATH."""
    env = dict(os.environ)
    src = str(ROOT / "src")
    env["PYTHONPATH"] = src + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _pin(cpu: int | None) -> list[str]:
    if cpu is None:
        return []
    if shutil.which("taskset") is None:
        print("note: taskset not found; runs are not pinned to one core", file=sys.stderr)
        return []
    return ["taskset", "-c", str(cpu)]


def _run(cmd: list[str], stdout: Path, stderr: Path, ok_codes: tuple[int, ...]) -> float:
    """Run ``cmd`` once; return its wall time in seconds."""
    with stdout.open("wb") as out, stderr.open("wb") as err:
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=err, env=_env(), check=False)
        elapsed = time.perf_counter() - t0
    if proc.returncode not in ok_codes:
        tail = stderr.read_text(errors="replace").strip().splitlines()[-15:]
        raise BenchError(
            f"{shlex.join(cmd)} exited with {proc.returncode}:\n    " + "\n    ".join(tail)
        )
    return elapsed


def _count_findings(jsonl: Path) -> int:
    count = 0
    with jsonl.open("rb") as fh:
        for line in fh:
            if line.strip():
                try:
                    obj = json.loads(line)
                except ValueError:
                    continue
                count += isinstance(obj, dict)
    return count


def _count_alerts(eve: Path) -> int:
    if not eve.exists():
        return 0
    count = 0
    with eve.open("rb") as fh:
        for line in fh:
            if b'"event_type":"alert"' in line:
                count += 1
    return count


def _warm_page_cache(path: Path) -> None:
    with path.open("rb", buffering=0) as fh:
        while fh.read(64 << 20):
            pass


def _suricata_version(binary: str) -> str:
    proc = subprocess.run([binary, "-V"], capture_output=True, text=True, check=False)
    text = (proc.stdout + proc.stderr).strip()
    found = re.search(r"version\s+(\S+(?:\s+RELEASE)?)", text)
    return found.group(1) if found else text or "unknown"


@dataclass(slots=True)
class _Plan:
    capture: Path
    workdir: Path
    minewatch_cmd: list[str]
    suricata: str | None
    anchors: Path
    cpu: int | None
    autofp: bool
    ok_codes: tuple[int, ...]


def _minewatch_once(plan: _Plan, capture: Path, tag: str) -> tuple[float, int]:
    out = plan.workdir / f"minewatch-{tag}.jsonl"
    cmd = [*_pin(plan.cpu), *plan.minewatch_cmd, str(capture), "--format", "jsonl", "--quiet"]
    seconds = _run(cmd, out, plan.workdir / f"minewatch-{tag}.stderr", plan.ok_codes)
    return seconds, _count_findings(out)


def _suricata_once(plan: _Plan, capture: Path, runmode: str, tag: str) -> tuple[float, int]:
    assert plan.suricata is not None
    logdir = plan.workdir / f"suricata-{runmode}-{tag}"
    shutil.rmtree(logdir, ignore_errors=True)
    logdir.mkdir(parents=True)
    pin = _pin(plan.cpu) if runmode == "single" else []
    cmd = [
        *pin,
        plan.suricata,
        "-c",
        str(plan.anchors / "suricata-anchor.yaml"),
        "-S",
        str(plan.anchors / "et-open-mining.rules"),
        "-r",
        str(capture),
        "-k",
        "none",
        "-l",
        str(logdir),
        "--runmode",
        runmode,
    ]
    seconds = _run(cmd, logdir / "stdout.txt", logdir / "stderr.txt", (0,))
    return seconds, _count_alerts(logdir / "eve.json")


def _ensure_replay(path: Path, size_gb: float, corpus: Path, rebuild: bool) -> None:
    if path.exists() and not rebuild:
        return
    print(f"building {path} ({size_gb:g} GiB) from {corpus} ...", flush=True)
    stats = build_replay(path, size_gb, corpus, verbose=False)
    print(
        f"  {stats.packets:,} packets, {stats.bytes:,} bytes in {stats.seconds:.1f} s",
        flush=True,
    )


def _fmt_rate(value: float) -> str:
    return f"{value:,.0f}"


def _report(results: list[Result], packets: int, size: int) -> None:
    header = (
        f"{'tool':<34} {'runs':>4} {'median s':>9} {'min s':>8} {'max s':>8} "
        f"{'packets/s':>12} {'MB/s':>8}  detections"
    )
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        if r.skipped is not None:
            print(f"{r.name:<34} {r.skipped}")
            continue
        med = r.median
        dets = sorted(set(r.detections))
        det = f"{dets[0]:,} {r.detection_word}" if len(dets) == 1 else f"{dets} {r.detection_word}"
        print(
            f"{r.name:<34} {len(r.seconds):>4} {med:>9.3f} {min(r.seconds):>8.3f} "
            f"{max(r.seconds):>8.3f} {_fmt_rate(packets / med):>12} "
            f"{size / 1e6 / med:>8.1f}  {det}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "capture",
        nargs="?",
        type=Path,
        help="replay capture to scan (default: CACHE/replay-<size>gib.pcap, built if missing)",
    )
    parser.add_argument("--size-gb", type=float, default=1.0, help="replay size in GiB (1.0)")
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="corpus folder")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE, help="replay cache dir")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the cached replay file")
    parser.add_argument("--runs", type=int, default=3, help="timed runs per tool (3)")
    parser.add_argument(
        "--minewatch-cmd",
        default=shlex.join([sys.executable, "-m", "minewatch", "scan"]),
        help="command that scans a capture; FILE --format jsonl --quiet are appended "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--minewatch-ok-codes",
        default="0",
        help="comma-separated exit codes of a successful minewatch scan (default: 0)",
    )
    parser.add_argument("--suricata", default="suricata", help="Suricata binary (suricata)")
    parser.add_argument("--anchors", type=Path, default=DEFAULT_ANCHORS, help="anchors folder")
    parser.add_argument("--cpu", type=int, default=0, help="core to pin single-core runs to (0)")
    parser.add_argument(
        "--no-autofp", action="store_true", help="skip Suricata's all-core autofp runmode"
    )
    parser.add_argument(
        "--no-minewatch", action="store_true", help="time Suricata only (minewatch skipped)"
    )
    parser.add_argument("--no-warmup", action="store_true", help="skip the untimed warm-up runs")
    parser.add_argument("--keep", action="store_true", help="keep the tools' outputs")
    args = parser.parse_args(argv)
    if args.runs < 1:
        parser.error("--runs must be at least 1")

    capture: Path = args.capture or args.cache_dir / f"replay-{args.size_gb:g}gib.pcap"
    try:
        if args.capture is None:
            _ensure_replay(capture, args.size_gb, args.corpus, args.rebuild)
        elif not capture.exists():
            parser.error(f"{capture} does not exist")
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2

    suricata = shutil.which(args.suricata)
    workdir = Path(tempfile.mkdtemp(prefix="bench-", dir=args.cache_dir))
    plan = _Plan(
        capture=capture,
        workdir=workdir,
        minewatch_cmd=shlex.split(args.minewatch_cmd),
        suricata=suricata,
        anchors=args.anchors,
        cpu=args.cpu,
        autofp=not args.no_autofp,
        ok_codes=tuple(int(c) for c in args.minewatch_ok_codes.split(",")),
    )
    size = capture.stat().st_size
    packets = len(read_capture(capture))
    cores = len(os.sched_getaffinity(0))
    print(f"capture: {capture} ({size:,} bytes, {packets:,} packets)")
    print(f"minewatch: {shlex.join(plan.minewatch_cmd)}")
    if suricata:
        print(f"suricata: {suricata}, version {_suricata_version(suricata)}")
    else:
        print("suricata: SKIPPED (not installed)")
    print(f"pinned runs use core {args.cpu} (taskset); machine has {cores} usable cores")

    mw = Result("minewatch (1 core)", detection_word="findings")
    single = Result("suricata single (1 core)")
    autofp = Result(f"suricata autofp ({cores} cores)")
    if args.no_minewatch:
        mw.skipped = "SKIPPED (--no-minewatch)"
    if suricata is None:
        single.skipped = autofp.skipped = "SKIPPED (not installed)"
    elif args.no_autofp:
        autofp.skipped = "SKIPPED (--no-autofp)"

    try:
        print("warm-up: reading the capture into the page cache", flush=True)
        _warm_page_cache(capture)
        if not args.no_warmup:
            # One untimed run each: numba's on-disk cache, Python's bytecode cache, the rule file
            # and the binaries are then warm, as they would be on a sensor that scans all day.
            if mw.skipped is None:
                s, _ = _minewatch_once(plan, capture, "warmup")
                print(f"warm-up: minewatch {s:.2f} s", flush=True)
            if single.skipped is None:
                s, _ = _suricata_once(plan, capture, "single", "warmup")
                print(f"warm-up: suricata single {s:.2f} s", flush=True)
        for run in range(args.runs):
            if mw.skipped is None:
                s, n = _minewatch_once(plan, capture, str(run))
                mw.seconds.append(s)
                mw.detections.append(n)
                print(f"run {run + 1}: minewatch {s:.3f} s", flush=True)
            if single.skipped is None:
                s, n = _suricata_once(plan, capture, "single", str(run))
                single.seconds.append(s)
                single.detections.append(n)
                print(f"run {run + 1}: suricata single {s:.3f} s", flush=True)
            if autofp.skipped is None:
                s, n = _suricata_once(plan, capture, "autofp", str(run))
                autofp.seconds.append(s)
                autofp.detections.append(n)
                print(f"run {run + 1}: suricata autofp {s:.3f} s", flush=True)
    except BenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        print(f"outputs kept in {workdir}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    results = [mw, single, autofp]
    _report(results, packets, size)
    print()
    if mw.skipped is None:
        pps = packets / mw.median
        verdict = "met" if pps >= TARGET_PPS else "NOT met"
        print(f"target >= {TARGET_PPS:,} packets/s per core: {verdict} ({pps:,.0f})")
        for other in (single, autofp):
            if other.skipped is None:
                ratio = other.median / mw.median
                print(f"ratio minewatch/{other.name}: {ratio:.2f}x throughput")
            else:
                print(f"ratio minewatch/{other.name}: n/a ({other.skipped})")
    if args.keep:
        print(f"outputs kept in {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
