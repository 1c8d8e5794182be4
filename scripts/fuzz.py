"""Fuzz MedViewer's readers: mutate real files and run `medviewer info` and `convert` on each.

    python scripts/fuzz.py --minutes 10            # run for ten minutes, save what goes wrong
    python scripts/fuzz.py --replay tests/data/fuzz_findings/<case>   # one case again, with its output

Every case runs in its own process with a timeout, an address-space limit and a file-size limit
(tests/fuzz_cases.run_in_subprocess), so a segfault, a hang or a memory blow-up is counted, not
suffered. The seeds and mutations are those of the property tests (tests/fuzz_cases.py). Outcomes:
ok, error (a clean one-line refusal) and the bad ones: traceback, unexpected (an exception nobody
planned for, logged), dirty (control characters, raw bytes or more than one line), leak (patient
data printed), silent (a truncated file converted as if complete), crash, hang, memory. A bad case
is saved (at most --keep per seed and outcome) under --findings as a folder holding the mutated
file(s) and finding.json (seed, operations, outcomes); tests/unit/test_fuzz_findings.py replays them all.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.fuzz_cases import BAD, hostile_ops, make_seeds, mutate, random_ops, run_in_subprocess, write_case  # noqa: E402

FINDINGS = REPO / "tests" / "data" / "fuzz_findings"


def save_finding(folder: Path, seed, ops, files, outcomes, details) -> Path:
    digest = hashlib.sha1(repr((seed.name, ops)).encode()).hexdigest()[:8]
    worst = next(o for o in outcomes.values() if o in BAD)
    target = folder / f"{seed.name}-{worst}-{digest}"
    if target.exists():
        shutil.rmtree(target)
    write_case(target, files)
    (target / "finding.json").write_text(json.dumps(
        {"seed": seed.name, "format": seed.fmt, "ops": ops, "found": outcomes, "expect": None,
         "note": f"found by scripts/fuzz.py: {worst}; once fixed, set expect to what info/convert do",
         "details": details}, indent=1) + "\n")
    return target


def table(counts: dict[str, Counter], title: str) -> str:
    outcomes = ["ok", "error", *BAD]
    width = max([len(k) for k in counts] + [6])
    lines = [title, f"{'':{width}} " + " ".join(f"{o:>9}" for o in outcomes) + "   cases"]
    for key in sorted(counts):
        row = counts[key]
        lines.append(f"{key:{width}} " + " ".join(f"{row.get(o, 0):>9}" for o in outcomes)
                     + f"   {sum(row.values()) // 2:>5}")
    total = sum(counts.values(), Counter())
    lines.append(f"{'all':{width}} " + " ".join(f"{total.get(o, 0):>9}" for o in outcomes)
                 + f"   {sum(total.values()) // 2:>5}")
    return "\n".join(lines)


def replay(case_dir: Path, timeout: float) -> int:
    import subprocess

    meta = json.loads((case_dir / "finding.json").read_text())
    main = next(p for p in sorted(case_dir.iterdir()) if p.name.startswith("case") and p.suffix != ".raw")
    print(f"seed {meta['seed']}, ops {meta['ops']}, found {meta['found']}")
    print("now:", run_in_subprocess(main, [tuple(op) for op in meta["ops"]], timeout))
    with tempfile.TemporaryDirectory() as tmp:
        for argv in (["info", str(main)], ["convert", str(main), str(Path(tmp) / "out.nii.gz")]):
            proc = subprocess.run([sys.executable, "-m", "medviewer", *argv], capture_output=True,
                                  timeout=timeout, cwd=REPO)
            print(f"$ medviewer {' '.join(argv)}  -> exit {proc.returncode}")
            sys.stdout.write(repr(proc.stdout.decode("utf-8", "replace"))[:2000] + "\n")
            sys.stdout.write(repr(proc.stderr.decode("utf-8", "replace"))[:2000] + "\n")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="how long to run (default 5)")
    parser.add_argument("--cases", type=int, help="stop after this many cases")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds a case may take (default 30)")
    parser.add_argument("--memory", type=float, default=3.0, help="address-space limit per case, GB (default 3)")
    parser.add_argument("--only", help="comma-separated seed names or formats to fuzz")
    parser.add_argument("--findings", type=Path, default=FINDINGS, help=f"where bad cases go (default {FINDINGS})")
    parser.add_argument("--keep", type=int, default=2, help="bad cases kept per seed and outcome (default 2)")
    parser.add_argument("--no-save", action="store_true", help="count only, save nothing")
    parser.add_argument("--code", type=Path, default=REPO,
                        help="source tree whose medviewer is fuzzed (default: this one), e.g. an older export")
    parser.add_argument("--replay", type=Path, help="run one saved finding again and show its output")
    args = parser.parse_args(argv)
    if args.replay:
        return replay(args.replay, args.timeout)
    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="medviewer-fuzz-"))
    try:
        seeds = make_seeds(work / "seeds")
        if args.only:
            wanted = set(args.only.split(","))
            seeds = [s for s in seeds if s.name in wanted or s.fmt in wanted]
        print("seeds:", ", ".join(s.name for s in seeds), flush=True)
        by_format: dict[str, Counter] = defaultdict(Counter)
        by_seed: dict[str, Counter] = defaultdict(Counter)
        kept: Counter = Counter()
        deadline = time.monotonic() + args.minutes * 60
        n = 0
        while time.monotonic() < deadline and (args.cases is None or n < args.cases):
            seed = seeds[n % len(seeds)]
            ops = hostile_ops(random_ops(rng, seed))
            files = mutate(seed, ops)
            case = write_case(work / "case", files)
            details: dict = {}
            outcomes = run_in_subprocess(case, ops, args.timeout, int(args.memory * 2**30), args.code, details)
            for command, outcome in outcomes.items():
                by_format[seed.fmt][outcome] += 1
                by_seed[seed.name][outcome] += 1
            bad = [o for o in outcomes.values() if o in BAD]
            if bad:
                print(f"[{n}] {seed.name} {ops} -> {outcomes}", flush=True)
                if not args.no_save and kept[(seed.name, bad[0])] < args.keep:
                    kept[(seed.name, bad[0])] += 1
                    print("    saved", save_finding(args.findings, seed, ops, files, outcomes, details), flush=True)
            shutil.rmtree(work / "case")
            n += 1
        print()
        print(table(by_format, f"{n} cases, outcomes of info + convert per format (seed {args.seed})"))
        print()
        print(table(by_seed, "per seed"))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
