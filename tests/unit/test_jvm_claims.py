"""Lab 17's checks of what a JVM counts (checker/claims/limits.py), on DockerTest's output as the course prints
it; the lab's runs themselves are replayed from real transcripts in test_course_replay.py."""

from __future__ import annotations

import pytest

from checker.claims.limits import jvm_sees, pids_differ
from checker.facts import Facts, MissingFact
from checker.records import Result, StepFact


def step(step_id: str, stdout: str, ran: bool = True) -> StepFact:
    return StepFact(step_id, step_id, "docker run …", "passed" if ran else "skipped",
                    Result(0, stdout, "", 0.5) if ran else None, [])


MEMINFO = step("meminfo", "MemTotal:        1015768 kB\n")  # the course's VM: 991 MiB


def test_the_course_s_own_figures_hold_on_the_course_s_machine():
    machine = step("jdk8", "System properties\nCores       : 2\nMemory (Max): 239\n")
    assert jvm_sees(Facts(), machine, MEMINFO, cores="2", memory="machine", at_least=0.18, at_most=0.26).ok
    limited = step("jdk8-heap-flag", "System properties\nCores       : 1\nMemory (Max): 123\n")
    assert jvm_sees(Facts(), limited, MEMINFO, cores="1", memory="512MB", at_least=0.18, at_most=0.26).ok
    verdict = jvm_sees(Facts(), limited, MEMINFO, cores="2", memory="", at_least=0.18, at_most=0.26)
    assert not verdict.ok and verdict.expected == "Cores : 2" and verdict.observed == "Cores : 1"
    # The machine's quarter is not the limit's: 239 MiB is no heap for a 512 MB container.
    assert not jvm_sees(Facts(), machine, MEMINFO, cores="", memory="512MB", at_least=0.18, at_most=0.26).ok


def test_a_run_that_did_not_happen_is_not_judged():
    with pytest.raises(MissingFact):
        jvm_sees(Facts(), step("jdk8", "", ran=False), MEMINFO, cores="1", memory="", at_least=0.18, at_most=0.26)


def test_the_pid_on_the_machine_and_in_the_container():
    ps = step("ps", "root     23778 23760  0 03:35 pts/0    00:00:00 /jdk-10/bin/java -Dloop=true DockerTest\n"
                    "vagrant  23801 23100  0 03:35 pts/1    00:00:00 grep DockerTest\n")
    assert pids_differ(Facts(), ps, step("jps", "6 DockerTest\n41 Jps\n"), program="DockerTest").ok
    same = pids_differ(Facts(), ps, step("jps", "23778 DockerTest\n"), program="DockerTest")
    assert not same.ok and "in the container: 23778" in same.observed
    assert not pids_differ(Facts(), ps, step("jps", "41 Jps\n"), program="DockerTest").ok
