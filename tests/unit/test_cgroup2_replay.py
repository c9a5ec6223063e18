"""Lab 17 on cgroup v2, replayed from a run on a real VM (tests/transcripts/cgroup2: the offline box's Debian
kernel under QEMU/TCG, its own cgroup v2, Docker 20.10; one processor, 1 GB): every claim holds, judged against
the machine's own cores and memory, and the sentences about the heap following a 512 MB limit do not hold
there (Java 8u151, 9 and 10 read the limit where cgroup v1 keeps it), while they hold on the container VMs'
cgroup v1 (tests/transcripts/course). The JVMs are the test environment's stand-ins, which read the limit as
those JVMs did: under cgroup v1 only.

Recorded with `check-lab 17 --target vagrant:…#swarmmanager --timeout-factor 3 --record …` on the suite's
libvirt swarmmanager (tests/integration/test_real_vm.py's settings); the offline box names no name server
(its networks are isolated), so for this run the VM's /etc/resolv.conf named its network's, which forwards
to the test environment's (tests/testenv/boxes/libvirtd.py): the Dockerfiles' JDK downloads resolve to the
stand-in download server there."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.unit.replay import replay_lab

TRANSCRIPTS = Path(__file__).resolve().parent.parent / "transcripts"
V2 = TRANSCRIPTS / "cgroup2" / "libvirt-bookworm-docker20" / "17-pass.json"
V1 = TRANSCRIPTS / "course" / "e1-bookworm-docker20" / "17-pass.json"
HEAP_FOLLOWS_LIMIT = {"jdk8-heap-flag-follows-memory", "jdk9-heap-flag-follows-memory", "jdk10-follows-memory",
                      "jdk10-shares-memory"}


@pytest.fixture(scope="module")
def on_v2():
    return replay_lab(V2)


def test_every_claim_of_lab_17_holds_on_cgroup_v2(on_v2):
    assert on_v2.engine.cgroup_version == "2"
    assert {c.id: c.verdict for c in on_v2.claims} == {c.id: "pass" for c in on_v2.claims}
    assert on_v2.passed and all(s.status == "passed" for s in on_v2.steps)


def test_the_heap_follows_the_limit_under_cgroup_v1_only(on_v2):
    v2 = {s.id: s for s in on_v2.statements}
    v1 = {s.id: s for s in replay_lab(V1).statements}
    for sid in HEAP_FOLLOWS_LIMIT:
        assert v1[sid].verdict == "pass", (sid, v1[sid].observed)
        assert v2[sid].verdict == "fail", (sid, v2[sid].observed)
        # a quarter of the machine's memory (about 240 MiB of its 1 GB), not of the 512 MB limit (123 MiB)
        assert "Memory (Max): 123" in v1[sid].observed and "Memory (Max): 123" not in v2[sid].observed
