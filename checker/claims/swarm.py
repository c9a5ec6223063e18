"""Checks about a Docker swarm (labs 11 and 12: the course's three swarm machines)."""

from __future__ import annotations

import json
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
        fact = facts.peek_step(step_id)
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


def _network(step: StepFact) -> dict:
    """The network `docker network inspect NAME` printed (a list of one)."""
    try:
        items = json.loads(_stdout(step) or "[]")
    except ValueError:
        raise MissingFact(f"step {step.step_id!r} printed no network's settings") from None
    if not items:
        raise MissingFact(f"step {step.step_id!r} found no network")
    return items[0]


def _subnets(network: dict) -> list:
    import ipaddress

    return [ipaddress.ip_network(c["Subnet"], strict=False) for c in (network.get("IPAM") or {}).get("Config") or []
            if c.get("Subnet")]


@check("network_setting", refs={"network": "inspect-network"}, options={"setting": "", "value": ""})
def network_setting(facts: Facts, network: StepFact, setting: str, value: str) -> Verdict:
    """One setting of a network as `docker network inspect` shows it: `attachable` (standalone containers may
    join it), `encrypted` (its option `encrypted` is set) or `subnet` (`value`, one of its subnets)."""
    net = _network(network)
    name = net.get("Name", "the network")
    if setting == "attachable":
        return Verdict(net.get("Attachable") is True, f"{name}: Attachable true",
                       f"Attachable {json.dumps(net.get('Attachable'))}")
    if setting == "encrypted":
        options = net.get("Options") or {}
        shown = ", ".join(f"{k}={v}" if v else k for k, v in options.items()) or "none"
        return Verdict("encrypted" in options, f"{name}: the option encrypted", f"options: {shown}")
    if setting == "subnet":
        subnets = [str(s) for s in _subnets(net)]
        return Verdict(value in subnets, f"{name}: subnet {value}", f"subnet {', '.join(subnets) or 'none'}")
    raise ValueError(f"network_setting: unknown setting {setting!r}")


def _address(step: StepFact) -> str:
    """The address a step printed; a step that could not look (observe mode: busybox1 gone) judges nothing."""
    if step.result is not None and step.result.exit_status != 0:
        raise MissingFact(f"step {step.step_id!r} found no address: {step.result.first_error_line()}")
    return _stdout(step).strip()


@check("container_in_network", refs={"address": "address", "network": "inspect-network"})
def container_in_network(facts: Facts, address: StepFact, network: StepFact) -> Verdict:
    """The address a container got (the `address` step printed it) lies within the subnet of the network
    (`docker network inspect` in the `network` step)."""
    import ipaddress

    net = _network(network)
    subnets = _subnets(net)
    expected = f"an address within {', '.join(map(str, subnets)) or 'the network subnet'} ({net.get('Name', '')})"
    text = _address(address)
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return Verdict(False, expected, f"no address: {text!r}" if text else "no address")
    return Verdict(any(ip in s for s in subnets), expected, f"{ip}")


ESP_MISSING = ("the kernel of {nodes} has no ESP (IPsec), so the encrypted network (--opt encrypted) carries no "
               "traffic between nodes (a container VM has its host's kernel; VMs with a distribution's kernel have it)")


@check("overlay_reach", refs={"pings": "ping", "address": "address", "network": "inspect-network"},
       options={"kernels": []})
def overlay_reach(facts: Facts, pings: StepFact, address: StepFact, network: StepFact, kernels: list) -> Verdict:
    """A container on one node reaches one on another over an overlay network: the `pings` step (busybox's
    `ping -c N ADDRESS`) got replies from the address the `address` step printed. An encrypted network's
    traffic between nodes is IPsec (ESP): where the steps `kernels` (one per node) say `none`, the kernel has
    no ESP and the claim is not applicable; `unknown` (no `ip`, no sudo) judges it anyway."""
    if "encrypted" in (_network(network).get("Options") or {}):
        missing = []
        for step_id in kernels:
            fact = facts.peek_step(step_id)
            if fact is None or fact.result is None:
                raise MissingFact(f"step {step_id!r} did not run")
            if fact.result.stdout.strip() == "none":
                missing.append(fact.title.rpartition("(on ")[2].rstrip(")") or step_id)
        if missing:
            raise NotApplicable(ESP_MISSING.format(nodes=", ".join(missing)))
    target = _address(address)
    expected = f"replies from {target or 'busybox1'} to the pings from the other node"
    if pings.result is None:
        raise MissingFact(f"step {pings.step_id!r} did not run")
    text = pings.result.stdout
    header = re.search(r"^PING \S+ \(([0-9.]+)\)", text, re.M)
    replies = re.findall(r"^\d+ bytes from ([0-9.]+):", text, re.M)
    summary = re.search(r"(\d+) packets transmitted, (\d+) (?:packets )?received", text)
    if header is None:
        first = (pings.result.stderr.strip().splitlines() or ["no output"])[0]
        return Verdict(False, expected, f"no ping ran: {first}")
    if header.group(1) != target:
        return Verdict(False, expected, f"the pings went to {header.group(1)}, not to busybox1's {target}")
    got = sum(1 for r in replies if r == target)
    sent = summary.group(1) if summary else "?"
    return Verdict(got > 0, expected, f"{got} of {sent} pings answered by {target}")
