"""The YAML matcher (`expect:`): claims that need no Python, judged on facts like any other check."""

from __future__ import annotations

import shutil

import pytest
import yaml

from checker import lab as labs
from checker.checks import evaluate
from checker.claims.matcher import holds, order, path_parts
from checker.errors import LabSpecError
from checker.facts import Facts
from checker.records import Result, StepFact
from tests.variants import LAB07


def facts_with(**steps) -> Facts:
    facts = Facts()
    for sid, (status, stdout, parsed) in steps.items():
        facts.steps[sid] = StepFact(sid, sid, "cmd", status, Result(0, stdout, "", 0.1) if status == "passed" else None,
                                    parsed)
    return facts


def claim(expect: dict) -> labs.ClaimSpec:
    return labs.ClaimSpec("c", "a claim", "expect", expect, "the hint", 1.0)


@pytest.mark.parametrize("expect,verdict", [
    ({"fact": "hello.stdout", "contains": "Hello from Docker!"}, "pass"),
    ({"fact": "hello.stdout", "contains": "Goodbye"}, "fail"),
    ({"fact": "hello.exit_status", "equals": 0}, "pass"),
    ({"fact": "version.parsed[Server/Engine/Version]", "at_least": "20.10"}, "pass"),
    ({"fact": "version.parsed[Server/Engine/Version]", "at_least": "24.0"}, "fail"),
    ({"fact": "version.parsed[Server/Engine/Version]", "at_most": "20.10.24", "at_least": "20.10.24"}, "pass"),
    ({"fact": "du.parsed.0", "matches": r"^36K\s"}, "pass"),
    ({"fact": "du.parsed.count", "equals": 2}, "pass"),
    ({"fact": "version.parsed[No/Such/Key]", "equals": "x"}, "error"),
    ({"fact": "build.stdout", "contains": "x"}, "error"),  # observe mode did not run the step
])
def test_matchers(expect, verdict):
    facts = facts_with(hello=("passed", "\nHello from Docker!\nThis message shows…\n", None),
                       version=("passed", "", {"Server/Engine/Version": "20.10.24+dfsg1"}),
                       du=("passed", "", ["36K\t/var/lib/docker/containers/a", "40K\t/var/lib/docker/containers/b"]),
                       build=("skipped", "", None))
    (result,) = evaluate([claim(expect)], facts)
    assert result.verdict == verdict, result
    assert result.observed and (result.expected or verdict == "error")
    assert bool(result.hint) == (verdict != "pass")


def test_comparisons():
    assert order("36K", "64KiB") == -1 and order("1MiB", "1000kB") == 1  # sizes with units
    assert order("26.1.5", "26.1") == 1 and order("20.10", "20.10.0") == 0  # versions
    assert order(5, "5") == 0 and order("abc", "def") is None
    assert holds("contains", ["a", "bc"], "bc") and not holds("contains", None, "x")
    assert path_parts("version.parsed[Server/Engine/Version]") == ["version", "parsed", "Server/Engine/Version"]


def lab_with_claims(tmp_path, claims_yaml: list[dict]):
    folder = tmp_path / "07"
    shutil.copytree(LAB07, folder)
    data = yaml.safe_load((folder / "lab.yaml").read_text())
    data["claims"] = claims_yaml
    (folder / "lab.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return folder


@pytest.mark.parametrize("expect,message", [
    ({"contains": "x"}, r"`expect.fact` names what to compare"),
    ({"fact": "nope.stdout", "contains": "x"}, r"no step or fact named 'nope'"),
    ({"fact": "pull.stdout"}, r"`expect` needs a matcher"),
    ({"fact": "pull.stdout", "resembles": "x"}, r"`expect.resembles` is not a matcher"),
    ({"fact": "pull.stdout", "matches": "("}, r"not a regular expression"),
    ({"fact": "pull.stdout", "contains": "{{ colour }}"}, r"unknown name \{\{ colour \}\}"),
])
def test_expect_is_validated_when_the_lab_loads(tmp_path, expect, message):
    folder = lab_with_claims(tmp_path, [{"id": "x", "title": "x", "expect": expect}])
    with pytest.raises(LabSpecError, match=message):
        labs.load(folder)


def test_expect_values_use_the_labs_variables(tmp_path):
    folder = lab_with_claims(tmp_path, [{"id": "pulled", "title": "x",
                                         "expect": {"fact": "pull.stdout", "contains": "{{ base_image }}"}}])
    lab = labs.load(folder)
    plan = labs.Plan(lab, lab.values({"base_image": "debian:12"}))
    assert plan.claims[0].args == {"fact": "pull.stdout", "contains": "debian:12"}
    with pytest.raises(LabSpecError, match="either `check:`"):
        labs.load(lab_with_claims(tmp_path / "b", [{"id": "x", "title": "x", "check": "cmd_layer_empty",
                                                     "expect": {"fact": "pull.stdout", "contains": "x"}}]))


def test_a_claim_needing_what_the_engine_lacks_is_not_applicable_there_and_judged_elsewhere():
    """`needs: [resource-limits]`: rootless Podman on cgroup v1 ignores --memory and --cpus, so a claim about a
    limit is not applicable there, with the reason; on Docker (or Podman on cgroup v2) it is judged."""
    import dataclasses

    from checker.records import Engine

    spec = dataclasses.replace(claim({"fact": "hello.stdout", "contains": "Goodbye"}), needs=("resource-limits",))
    podman = Engine("5.8.6", "overlay", "/home/vagrant/.local/share/containers/storage", cgroup_version="1",
                    product="podman", rootless=True)
    facts = facts_with(hello=("passed", "Hello from Docker!", None))
    facts.engine = podman
    [result] = evaluate([spec], facts)
    assert result.verdict == "n/a" and "ignores a container's resource limits" in result.observed
    assert result.max_points == 0
    for engine in (Engine("28.5.2", "overlay2", "/var/lib/docker", cgroup_version="1"),
                   dataclasses.replace(podman, cgroup_version="2")):
        facts.engine = engine
        assert evaluate([spec], facts)[0].verdict == "fail"
