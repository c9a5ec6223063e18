"""The soak: `check-lab 07` many times back to back on one VM, then again after `vagrant halt` / `vagrant up`.

    .venv/bin/python -m bench.soak [--runs 20] [--after-cycle 20] [--json FILE]

It brings up its own container VM (in a throwaway Vagrant project on the offline test environment),
and reports whether every run gave the same verdicts (claims and exit code). Exit 0 only if they did.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter

from bench.run import REPO, BIN, Project


def verdicts(project: Project, index: int) -> tuple[int, tuple, float]:
    report = project.root / f"soak-{index}.json"
    seconds, proc = project.run(str(BIN / "check-lab"), "07", "--json", str(report), check=False)
    data = json.loads(report.read_text()) if report.exists() else {"claims": []}
    return proc.returncode, tuple((c["id"], c["verdict"]) for c in data["claims"]), seconds


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bench.soak")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--after-cycle", type=int, default=20, help="runs after vagrant halt / vagrant up")
    parser.add_argument("--json", default="soak-results.json")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(REPO))
    from tests.testenv import env as testenv

    settings = testenv.start()
    project = Project(settings, testenv.lab_settings(settings))
    results: list[dict] = []
    try:
        project.run(str(BIN / "lab-env"), "up", "--provider", "docker")
        for phase, count in (("first", args.runs), ("after halt/up", args.after_cycle)):
            if phase != "first":
                project.run("vagrant", "halt")
                project.run("vagrant", "up")
            for i in range(count):
                code, claims, seconds = verdicts(project, len(results))
                results.append({"phase": phase, "run": i + 1, "exit": code, "claims": claims,
                                "seconds": round(seconds, 2)})
                print(f"{phase:>14} run {i + 1:>2}: exit {code}, "
                      f"{sum(1 for _c, v in claims if v == 'pass')}/{len(claims)} claims hold, {seconds:.1f}s",
                      flush=True)
    finally:
        project.destroy()

    signatures = Counter((r["exit"], r["claims"]) for r in results)
    (signature, same), = signatures.most_common(1)
    identical = same == len(results) and signature[0] == 0
    for phase in ("first", "after halt/up"):
        rows = [r for r in results if r["phase"] == phase]
        agree = sum(1 for r in rows if (r["exit"], r["claims"]) == signature)
        print(f"{phase}: {agree}/{len(rows)} runs with identical verdicts (exit {signature[0]})")
    with open(args.json, "w") as fh:
        json.dump({"identical": identical, "runs": results}, fh, indent=1, default=list)
    print("SOAK PASSED: every run gave the same verdicts" if identical else "SOAK FAILED: verdicts differ")
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
