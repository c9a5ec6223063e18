"""Checks about resource limits a program in a container sees (lab 15, memory)."""

from __future__ import annotations

import re

from checker.checks import check
from checker.facts import Facts, MissingFact
from checker.records import StepFact, Verdict
from checker.units import docker_memory_bytes

MIB = 1024 * 1024


def _printed_mib(step: StepFact, label: str) -> int | None:
    """The number a program printed after `label:` (in MiB), or None."""
    if step.result is None:
        raise MissingFact(f"step {step.step_id!r} did not run")
    match = re.search(rf"(?m)^{re.escape(label)}:\s*(\d+)\s*$", step.result.stdout)
    return int(match.group(1)) if match else None


def _mem_total(meminfo: StepFact) -> int:
    """The machine's memory from `/proc/meminfo`'s MemTotal line, in bytes."""
    text = meminfo.result.stdout if meminfo.result else ""
    match = re.search(r"MemTotal:\s*(\d+)\s*kB", text)
    if not match:
        raise MissingFact(f"step {meminfo.step_id!r} shows no MemTotal line")
    return int(match.group(1)) * 1024


@check("jvm_max_memory", refs={"output": "java", "meminfo": "meminfo"},
       options={"limit": "machine", "label": "Max Memory", "at_least": 0.75, "at_most": 1.02})
def jvm_max_memory(facts: Facts, output: StepFact, meminfo: StepFact, limit, label: str,
                   at_least: float, at_most: float) -> Verdict:
    """A JVM allowed all of its memory (-XX:MaxRAMFraction=1) reports a maximum heap close to the memory it
    sees: the machine's (limit "machine", MemTotal) or the container's limit (`--memory`, e.g. "500m").
    Judged as a share of it: `at_least` (the heap is the memory less the JVM's own areas) to `at_most`
    (the heap's size is rounded up to the JVM's alignment: a little over MemTotal happens)."""
    if limit == "machine":
        ceiling, what = _mem_total(meminfo), "the machine's memory (MemTotal)"
    else:
        ceiling, what = docker_memory_bytes(limit), f"the container's limit (--memory {limit})"
    mib = ceiling // MIB
    low, high = int(mib * float(at_least)), int(mib * float(at_most))
    value = _printed_mib(output, label)
    expected = (f"{label} between {low} and {high} (MiB): {round(float(at_least) * 100)}% to "
                f"{round(float(at_most) * 100)}% of {what}")
    if value is None:
        return Verdict(False, expected, f"the program printed no `{label}: N` line")
    return Verdict(low <= value <= high, expected, f"{label}: {value} (MiB), {what}: {mib} MiB")
