"""Checks about containers' networks (labs 08–10): their interfaces and addresses, the subnets Docker gives
its networks. Subnets and addresses are the engine's own, read from what it printed, never the course's."""

from __future__ import annotations

import ipaddress
import re

from checker.checks import check
from checker.claims.matcher import step_value
from checker.facts import Facts, MissingFact, NotApplicable, not_run_here
from checker.records import StepFact, Verdict

SUBNET = re.compile(r'"Subnet":\s*"([0-9a-fA-F.:]+/\d+)"')


def _output(step: StepFact, what: str):
    if step.status == "skipped":
        raise not_run_here(step)
    if step.result is None:
        raise MissingFact(f"step {step.step_id!r} did not run here")
    return step.parsed if what == "parsed" else step.result.stdout


def subnet_of(step: StepFact) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
    match = SUBNET.search(_output(step, "stdout"))
    if match is None:
        raise MissingFact(f"`{step.command.splitlines()[0]}` printed no subnet")
    return ipaddress.ip_network(match.group(1), strict=False)


@check("interfaces", refs={"output": "ifconfig"}, options={"names": None})
def interfaces(facts: Facts, output: StepFact, names: str) -> Verdict:
    """The container's interfaces (an `ifconfig` step, parse: ifconfig) are exactly these."""
    found = _output(output, "parsed") or {}
    wanted = sorted(n.strip() for n in names.split(",") if n.strip())
    shown = ", ".join(f"{n} ({v['inet'] or 'no address'})" for n, v in found.items()) or "none"
    return Verdict(sorted(found) == wanted, f"its interfaces: {', '.join(wanted)}", f"interfaces: {shown}")


@check("address_in_subnet", refs={"output": "ifconfig", "network": "subnet"}, options={"interface": "eth0"})
def address_in_subnet(facts: Facts, output: StepFact, network: StepFact, interface: str) -> Verdict:
    """The container's `interface` has an address in the subnet a `docker network inspect` step printed."""
    subnet = subnet_of(network)
    found = (_output(output, "parsed") or {}).get(interface)
    address = found and found.get("inet")
    ok = bool(address) and ipaddress.ip_address(address) in subnet
    return Verdict(ok, f"{interface} has an address in {subnet}, the network's subnet",
                   f"{interface}: {address or 'no such interface' if not found else address or 'no address'}")


@check("distinct_subnets", refs={"first": "subnet", "second": "new-subnet"})
def distinct_subnets(facts: Facts, first: StepFact, second: StepFact) -> Verdict:
    a, b = subnet_of(first), subnet_of(second)
    return Verdict(not a.overlaps(b), "the new network gets a subnet of its own, apart from the first",
                   f"{a} and {b}")


# What a ping prints when it cannot open an ICMP socket at all (no CAP_NET_RAW, and the kernel's
# net.ipv4.ping_group_range leaves the container's group out): busybox's and iputils' words.
PING_DENIED = re.compile(r"^.*(?:permission denied \(are you root\?\)|socket: Operation not permitted|"
                         r"socktype: SOCK_RAW).*$", re.M)


@check("ping_shows", refs={"ping": "ping"}, options={"matches": None})
def ping_shows(facts: Facts, ping: StepFact, matches: str) -> Verdict:
    """What a ping step printed (both streams) matches `matches`. A ping that could not open its socket in
    the container (rootless Podman's containers have no CAP_NET_RAW and may not be let in by
    ping_group_range) shows nothing about the network: not applicable there, with its words."""
    out = step_value(ping, "output")
    denied = PING_DENIED.search(out)
    if denied:
        raise NotApplicable(f"ping cannot open its ICMP socket in this engine's containers "
                            f"({denied.group(0).strip()}): it never asks the network, so what it would "
                            "show of the network is not observable here")
    found = re.search(matches, out)
    return Verdict(found is not None, f"{ping.step_id}.output matches {matches}",
                   f"{ping.step_id}.output = {' ⏎ '.join(out.strip().splitlines()[-3:]) or '(nothing)'}")
