"""Checks about resource limits a program in a container sees: lab 15 (memory), lab 17 (what a JVM counts:
its processors and its default maximum heap)."""

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
    match = re.search(rf"(?m)^{re.escape(label)}\s*:\s*(\d+)\s*$", step.result.stdout)
    return int(match.group(1)) if match else None


def _mem_total(meminfo: StepFact) -> int:
    """The machine's memory from `/proc/meminfo`'s MemTotal line, in bytes."""
    text = meminfo.result.stdout if meminfo.result else ""
    match = re.search(r"MemTotal:\s*(\d+)\s*kB", text)
    if not match:
        raise MissingFact(f"step {meminfo.step_id!r} shows no MemTotal line")
    return int(match.group(1)) * 1024


def _memory_range(limit, meminfo: StepFact, at_least, at_most) -> tuple[int, str, int, int]:
    """The memory a JVM sees, in MiB, and what it is: the machine's (limit "machine", MemTotal) or the
    container's limit (a `--memory` size); with the range `at_least` to `at_most` of it, in MiB."""
    if limit == "machine":
        ceiling, what = _mem_total(meminfo), "the machine's memory (MemTotal)"
    else:
        ceiling, what = docker_memory_bytes(limit), f"the container's limit (--memory {limit})"
    mib = ceiling // MIB
    return mib, what, int(mib * float(at_least)), int(mib * float(at_most))


@check("jvm_max_memory", refs={"output": "java", "meminfo": "meminfo"},
       options={"limit": "machine", "label": "Max Memory", "at_least": 0.75, "at_most": 1.02})
def jvm_max_memory(facts: Facts, output: StepFact, meminfo: StepFact, limit, label: str,
                   at_least: float, at_most: float) -> Verdict:
    """A JVM allowed all of its memory (-XX:MaxRAMFraction=1) reports a maximum heap close to the memory it
    sees: the machine's (limit "machine", MemTotal) or the container's limit (`--memory`, e.g. "500m").
    Judged as a share of it: `at_least` (the heap is the memory less the JVM's own areas) to `at_most`
    (the heap's size is rounded up to the JVM's alignment: a little over MemTotal happens)."""
    mib, what, low, high = _memory_range(limit, meminfo, at_least, at_most)
    value = _printed_mib(output, label)
    expected = (f"{label} between {low} and {high} (MiB): {round(float(at_least) * 100)}% to "
                f"{round(float(at_most) * 100)}% of {what}")
    if value is None:
        return Verdict(False, expected, f"the program printed no `{label}: N` line")
    return Verdict(low <= value <= high, expected, f"{label}: {value} (MiB), {what}: {mib} MiB")


@check("jvm_sees", refs={"output": "java", "meminfo": "meminfo"},
       options={"cores": "", "memory": "", "at_least": 0.18, "at_most": 0.26})
def jvm_sees(facts: Facts, output: StepFact, meminfo: StepFact, cores, memory, at_least: float,
             at_most: float) -> Verdict:
    """What lab 17's DockerTest prints, `Cores       : N` and `Memory (Max): M`: the processors the JVM counts
    (`cores`, a number; "" leaves them out) and its default maximum heap, a quarter of the memory it sees less
    the JVM's own share (`memory`: "machine" for the machine's MemTotal, or a `--memory` size such as 512MB;
    "" leaves it out). Judged as `at_least` to `at_most` of that memory: a quarter of it, less a survivor
    space (Serial and Parallel collectors) or rounded up to the heap's alignment."""
    expected, observed, holds = [], [], True
    if str(cores).strip():
        want = int(str(cores).strip())
        got = _printed_mib(output, "Cores")
        expected.append(f"Cores : {want}")
        observed.append(f"Cores : {got}" if got is not None else "no `Cores : N` line")
        holds = holds and got == want
    if str(memory).strip():
        mib, what, low, high = _memory_range(memory, meminfo, at_least, at_most)
        got = _printed_mib(output, "Memory (Max)")
        expected.append(f"Memory (Max) between {low} and {high} (MiB): about a quarter of {what}, {mib} MiB")
        observed.append(f"Memory (Max): {got}" if got is not None else "no `Memory (Max): N` line")
        holds = holds and got is not None and low <= got <= high
    return Verdict(holds, "; ".join(expected), "; ".join(observed))


@check("pids_differ", refs={"host": "ps", "inside": "jps"}, options={"program": "DockerTest"})
def pids_differ(facts: Facts, host: StepFact, inside: StepFact, program: str) -> Verdict:
    """A program in a container has one process ID on the machine (`ps -ef`) and another in the container's
    own PID namespace (`jps` there)."""
    for step in (host, inside):
        if step.result is None:
            raise MissingFact(f"step {step.step_id!r} did not run")
    on_machine = [line.split()[1] for line in host.result.stdout.splitlines()
                  if program in line and "grep" not in line and len(line.split()) > 1]
    match = re.search(rf"(?m)^(\d+)\s+{re.escape(program)}\s*$", inside.result.stdout)
    expected = f"{program}'s PID on the machine (ps -ef) is not its PID in the container (jps)"
    if not on_machine or match is None:
        return Verdict(False, expected, f"ps -ef shows {', '.join(on_machine) or 'no'} {program}; jps shows "
                                        f"{match.group(1) if match else 'none'}")
    inner = match.group(1)
    return Verdict(inner not in on_machine, expected, f"on the machine: {', '.join(on_machine)}; in the container: {inner}")
