"""Checks about a Docker swarm (labs 11 and 12: the course's three swarm machines)."""

from __future__ import annotations

import re

from checker.checks import check
from checker.facts import Facts, MissingFact, NotApplicable
from checker.records import StepFact, Verdict


def _stdout(step: StepFact) -> str:
    if step.result is None:
        raise MissingFact(f"step {step.step_id!r} did not run")
    return step.result.stdout


@check("routing_mesh", refs={"answers": "mesh"}, options={"kernels": [], "expect": "Welcome to nginx!"})
def routing_mesh(facts: Facts, answers: StepFact, kernels: list, expect: str) -> Verdict:
    """Every node answers the service's published port with the service's page (`NODE: PAGE-TEXT` lines
    of the `answers` step), through the routing mesh, which needs the kernel's IP virtual server (IP_VS) on
    every node: the steps `kernels` (one per machine) say `ip_vs` or `none`. Without it the claim is not
    applicable: the machine, not the lab, cannot do it."""
    missing = []
    for step_id in kernels:
        fact = facts.steps.get(step_id)
        if fact is None or fact.result is None:
            raise MissingFact(f"step {step_id!r} did not run")
        if "ip_vs" not in fact.result.stdout:
            missing.append(fact.title.rpartition("(on ")[2].rstrip(")") or step_id)
    if missing:
        raise NotApplicable(
            f"the kernel of {', '.join(missing)} has no IP virtual server (IP_VS), which the routing mesh needs "
            "(a container VM has its host's kernel; VMs with a distribution's kernel have it)")
    lines = dict(line.split(":", 1) for line in _stdout(answers).splitlines() if ":" in line)
    expected = f"every node answers {expect!r}"
    if not lines:
        return Verdict(False, expected, "no node was asked")
    silent = [node.strip() for node, text in lines.items() if expect not in text]
    observed = ("every node answered: " + ", ".join(n.strip() for n in lines) if not silent
                else f"no answer with it from {', '.join(silent)}")
    return Verdict(not silent, expected, observed)
