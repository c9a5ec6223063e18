"""Replay a recorded transcript through the whole checker (runner, parsers, probes, facts, claims)."""

from __future__ import annotations

import json
from pathlib import Path

from checker import lab as labs
from checker.runner import RunReport, Runner
from checker.transcript import ReplayTransport
from tests.variants import LAB07, VARIANTS, make_variant

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"


def engines() -> list[str]:
    """The engines with transcripts of lab 07 (tests/transcripts/resources holds the resource kinds' answers,
    tests/transcripts/course the course's other labs, tests/transcripts/swarm lab 11's, tests/transcripts/drift the course on
    the five engines as `scripts/drift --readme` measured it, tests/transcripts/engine-info other engines' own
    `docker info`, e.g. Podman's, tests/transcripts/podman the course's labs on Podman, E6, tests/transcripts/cgroup2
    lab 17 on a VM with cgroup v2)."""
    return sorted(p.name for p in TRANSCRIPTS.iterdir()
                  if p.is_dir() and p.name not in ("resources", "course", "swarm", "drift", "engine-info", "podman",
                                                       "cgroup2"))


def transcript(engine: str, scenario: str) -> Path:
    return TRANSCRIPTS / engine / f"{scenario}.json"


def replay(engine: str, scenario: str, tmp_path: Path) -> RunReport:
    path = transcript(engine, scenario)
    meta = json.loads(path.read_text())["meta"]
    folder = make_variant(scenario, tmp_path) if scenario in VARIANTS else LAB07
    lab = labs.load(folder)
    plan = labs.Plan(lab, lab.values({k: str(v) for k, v in meta.get("values", {}).items()}))
    return Runner(plan, ReplayTransport(path), observe=bool(meta.get("observe"))).run()


def replay_lab(path: Path) -> RunReport:
    """A transcript of one of the course's labs (its meta names the lab and the values it ran with), replayed."""
    meta = json.loads(path.read_text())["meta"]
    lab = labs.find(meta["lab"])
    plan = labs.Plan(lab, lab.values({k: str(v) for k, v in meta.get("values", {}).items() if k in lab.variables}))
    return Runner(plan, ReplayTransport(path)).run()
