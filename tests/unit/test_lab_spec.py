"""Loading and validating lab.yaml: every problem is a LabSpecError/UsageError that says where."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

from checker import lab as labs
from checker.errors import LabSpecError, UsageError
from tests.variants import LAB07


@pytest.fixture
def lab_copy(tmp_path) -> Path:
    folder = tmp_path / "07-copy"
    shutil.copytree(LAB07, folder)
    return folder


def edit(folder: Path, change) -> None:
    path = folder / "lab.yaml"
    data = yaml.safe_load(path.read_text())
    change(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def test_lab_07_loads():
    lab = labs.load(LAB07)
    assert lab.id == "07" and lab.title == "FS layering"
    assert [c.id for c in lab.claims][:2] == ["layers-pulled-separately", "layers-stored-in-driver-dir"]
    assert [(f.source, f.dest) for f in lab.files] == [
        ("course/Dockerfile-my-base-image", "Dockerfile-my-base-image"), ("course/Dockerfile-my-image", "Dockerfile-my-image"),
        ("course/hello.sh", "hello.sh"), ("course/README.md", "README.md")]
    plan = labs.Plan(lab, lab.values())
    assert plan.resources("containers") == [f"my_container_{i}" for i in range(1, 6)]
    assert plan.resources("pulls") == ["ubuntu:18.04"]


def test_find_by_id_number_and_folder_name():
    assert labs.find("07").folder == LAB07
    assert labs.find("7").folder == LAB07
    assert labs.find("07-FS_layering").folder == LAB07
    assert labs.find(str(LAB07)).folder == LAB07
    assert labs.find(str(LAB07 / "lab.yaml")).folder == LAB07


def test_unknown_lab_lists_the_known_ones():
    known = ", ".join(sorted(p.name for p in LAB07.parent.iterdir() if (p / "lab.yaml").is_file()))
    with pytest.raises(UsageError) as caught:
        labs.find("99")
    assert caught.value.message == f"unknown lab '99'; known labs: {known}"


def test_malformed_yaml_gives_line_and_column(lab_copy):
    text = (lab_copy / "lab.yaml").read_text().replace("title: FS layering", "title: [FS layering", 1)
    (lab_copy / "lab.yaml").write_text(text)
    with pytest.raises(LabSpecError, match=r"lab\.yaml:\d+:\d+: invalid YAML"):
        labs.load(lab_copy)


@pytest.mark.parametrize("change,message", [
    (lambda d: d["claims"][0].update(check="no_such_check"), r"unknown check 'no_such_check'"),
    (lambda d: d["steps"][0].update(parse="no_such_parser"), r"unknown parser 'no_such_parser'"),
    (lambda d: d["steps"][0]["after"][0].update(probe="nope"), r"unknown probe 'nope'"),
    (lambda d: d["steps"][1].update(id="pull"), r"duplicate step id"),
    (lambda d: d["claims"][1].update(id=d["claims"][0]["id"]), r"duplicate claim id"),
    (lambda d: d["steps"][0].update(run="docker pull {{ nope }}"), r"unknown name \{\{ nope \}\}"),
    (lambda d: d["steps"][0].update(timeout=-1), r"timeout must be positive"),
    (lambda d: d["steps"][0].update(colour="red"), r"unknown key `colour`"),
    (lambda d: d.update(schema=2), r"schema 2 is not supported"),
    (lambda d: d.pop("steps"), r"missing `steps`"),
    (lambda d: d["claims"][0].update({"with": {"pull": "no-such-step"}}), r"no step or fact named 'no-such-step'"),
    (lambda d: d["claims"][0].update({"with": {"bogus": 1}}), r"`with.bogus` is not a parameter"),
    (lambda d: d["variables"].update(n={"type": "int", "default": "five"}), r"must be a whole number"),
    (lambda d: d["steps"][0].update(sudo="yes"), r"`sudo` must be a bool"),
    (lambda d: d["steps"][0].update(observe=" "), r"`observe:` is true, false or the command observe mode runs"),
    (lambda d: d["steps"][0].update(on="swarmnode9"), r"`on: swarmnode9` is not one of the lab's machines"),
    (lambda d: d.update(machines=["a", "a"]), r"names a machine twice"),
    (lambda d: d["steps"][0].update(observe="docker logs {{ nope }}"), r"unknown name \{\{ nope \}\}"),
    (lambda d: d["steps"][0].update(capture={"cid": {}}), r"`capture.cid` needs `match:`, `observe:` or both"),
    (lambda d: d.update(files=["missing.txt"]), r"file 'missing.txt' does not exist"),
    (lambda d: d.update(files=["../lab.yaml"]), r"outside the lab folder"),
    (lambda d: d.update(files=["/etc/passwd"]), r"outside the lab folder"),
    (lambda d: d["claims"][0].update(needs=["gpu"]), r"`needs:` gpu: the engine features are compose, container-address"),
])
def test_invalid_specs_are_refused_with_a_reason(lab_copy, change, message):
    edit(lab_copy, change)
    with pytest.raises(LabSpecError, match=message):
        labs.load(lab_copy)


def test_symlink_leaving_the_lab_folder_is_refused(lab_copy, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for upload")
    os.symlink(secret, lab_copy / "link.txt")
    edit(lab_copy, lambda d: d["files"].append("link.txt"))
    with pytest.raises(LabSpecError, match=r"leads outside the lab folder"):
        labs.load(lab_copy)


def test_set_overrides_are_checked(lab_copy):
    edit(lab_copy, lambda d: d["variables"].update(
        containers={"type": "int", "default": 5, "min": 1, "max": 20, "description": "how many"}))
    lab = labs.load(lab_copy)
    assert lab.values(labs.parse_sets(["containers=3"]))["containers"] == 3
    for bad, message in [
        (["containers"], r"expected KEY=VALUE"),
        (["=3"], r"expected KEY=VALUE"),
        (["nope=1"], r"has no variable 'nope'"),
        (["containers=lots"], r"whole number"),
        (["containers=0"], r"at least 1"),
        (["containers=99"], r"at most 20"),
        (["base_image=x; touch /tmp/owned"], r"not allowed"),
    ]:
        with pytest.raises(UsageError, match=message):
            lab.values(labs.parse_sets(bad))


def test_templates_quote_values_for_the_shell():
    ctx = {"name": "x; touch /tmp/owned", "names": ["a b", "c"]}
    assert labs.render("echo {{ name }}", ctx, shell=True) == "echo 'x; touch /tmp/owned'"
    assert labs.render("rm {{ names }}", ctx, shell=True) == "rm 'a b' c"
    assert labs.render("{{ name }}", ctx) == "x; touch /tmp/owned"


def test_ranges_expand_like_bash():
    assert labs.expand_ranges("c_{1..3}") == ["c_1", "c_2", "c_3"]
    assert labs.expand_ranges("plain") == ["plain"]
    lab = labs.load(LAB07)
    plan = labs.Plan(lab, lab.values())
    assert plan.resources("containers") == [f"my_container_{i}" for i in range(1, 6)]


def test_the_uploaded_copy_of_a_course_file_follows_the_variables():
    lab = labs.load(LAB07)
    base = next(f for f in lab.files if f.dest == "Dockerfile-my-base-image")
    on_disk = (LAB07 / base.source).read_bytes()
    assert labs.Plan(lab, lab.values()).file_bytes(base) == on_disk  # the course's own, byte for byte
    other = labs.Plan(lab, lab.values({"base_image": "debian:12"}))
    assert other.file_bytes(base) == on_disk.replace(b"FROM ubuntu:18.04", b"FROM debian:12")
    assert (LAB07 / base.source).read_bytes() == on_disk  # nothing changed on disk
    assert any(d["kind"] == "file" for d in other.departures())
    assert not any(d["kind"] == "file" for d in labs.Plan(lab, lab.values()).departures())


def test_steps_that_differ_from_the_course_say_how_and_why():
    plan = labs.Plan(labs.load(LAB07), labs.load(LAB07).values())
    departs = {d["step"]: d for d in plan.departures() if d["kind"] == "departs"}
    assert departs["stop"]["course"] == "docker stop $(docker ps -q)"
    assert departs["stop"]["here"].startswith("docker stop my_container_1")
    assert "every container on the machine" in departs["stop"]["why"]
    assert {d["step"] for d in plan.departures() if d["kind"] == "addition"} == {"ps-size"}


@pytest.mark.parametrize("change,message", [
    (lambda d: d["resources"].update(buckets=["x"]), r"unknown key `buckets` \(allowed: .*volumes"),
    (lambda d: d["resources"].update(networks=["bridge"]), r"one of Docker's own networks"),
    (lambda d: d["resources"].update(volumes=[""]), r"`volumes` must list names"),
    (lambda d: d["claims"][0].update(check="virtual_equals_image_ls"), r"virtual_equals_image_ls needs `with.image`"),
])
def test_resources_and_required_options_are_validated(lab_copy, change, message):
    edit(lab_copy, change)
    with pytest.raises(LabSpecError, match=message):
        labs.load(lab_copy)


def test_every_resource_kind_can_be_named_in_a_lab(lab_copy):
    from checker.resources import KINDS

    edit(lab_copy, lambda d: d["resources"].update({key: ["4000" if key == "ports" else f"lab-{key.replace('_', '')}"]
                                                     for key in KINDS}))
    lab = labs.load(lab_copy)
    plan = labs.Plan(lab, lab.values())
    assert set(plan.all_resources()) == set(KINDS)


def test_a_port_is_a_number(lab_copy):
    edit(lab_copy, lambda d: d["resources"].update({"ports": ["http"]}))
    with pytest.raises(LabSpecError, match=r"resources: `ports`: 'http' is not a TCP port number \(1-65535\)"):
        labs.load(lab_copy)


@pytest.mark.parametrize("folder", sorted(p for p in LAB07.parent.iterdir() if (p / "lab.yaml").is_file()),
                         ids=lambda p: p.name)
def test_every_lab_loads_and_says_what_to_do(folder):
    """Each lab of the repository (whatever labs there are): valid, every claim with a hint."""
    lab = labs.load(folder)
    assert lab.claims and lab.steps and lab.title
    for claim in lab.claims:
        assert claim.hint, f"{lab.id}: claim {claim.id} has no hint"
    plan = labs.Plan(lab, lab.preview_values())
    for step in lab.steps:
        assert plan.command(step)
    assert len(plan.claims) == len([c for c in lab.claims if not c.student])  # those of --student aside
    assert len(labs.Plan(lab, lab.preview_values(), student="alice").claims) == len(lab.claims)


def test_the_student_form_of_a_step_and_its_claim_only_with_student():
    """--student ID: the step's student form leaves the student's mark (an addition, in the departures), and
    the claim on the mark is judged; without it, the lab is the course's and the claim is not there."""
    lab = labs.find("07")
    build = next(s for s in lab.steps if s.id == "build-base")
    plain, marked = labs.Plan(lab, lab.values()), labs.Plan(lab, lab.values(), student="alice")
    assert "--label" not in plain.command(build)
    assert marked.command(build).startswith("docker build --label check-lab.student=alice \\\n")
    assert "image-carries-students-mark" not in {c.id for c in plain.claims}
    claim = next(c for c in marked.claims if c.id == "image-carries-students-mark")
    assert claim.args["student"] == "alice" and claim.args["label"] == "check-lab.student"
    added = [d for d in marked.departures() if d.get("step") == "build-base"]
    assert added[0]["kind"] == "addition" and added[0]["why"].startswith("--student alice: ")
    assert "$LAB_DIR" in added[0]["why"] and "--label" in added[0]["here"]  # the step's own departure kept
    assert any(d.get("claim") == "image-carries-students-mark" for d in marked.departures())
    assert not any(d.get("claim") == "image-carries-students-mark" for d in plain.departures())


def test_a_student_form_must_leave_the_mark_and_a_student_claim_must_say_so(lab_copy):
    edit(lab_copy, lambda d: d["steps"][0].update({"student": {"run": "docker pull x", "why": "w"}}))
    with pytest.raises(labs.LabSpecError, match="uses {{ student }}"):
        labs.load(lab_copy)
    edit(lab_copy, lambda d: (d["steps"][0].pop("student"), d["claims"][0].update({"student": True})))
    with pytest.raises(labs.LabSpecError, match="addition"):
        labs.load(lab_copy)
    edit(lab_copy, lambda d: (d["claims"][0].pop("student"),
                              d.setdefault("variables", {}).update({"student": {"default": "x"}})))
    with pytest.raises(labs.LabSpecError, match="name of check-lab's own"):
        labs.load(lab_copy)


def test_a_required_variable_is_asked_for_by_name(lab_copy):
    folder = lab_copy
    edit(folder, lambda d: d.setdefault("variables", {}).update(
        {"user": {"required": True, "description": "your account"}}))
    lab = labs.load(folder)
    with pytest.raises(UsageError, match=r"lab 07 needs --set user=… \(your account\)"):
        lab.values()
    assert lab.values({"user": "me"})["user"] == "me"
    assert lab.preview_values()["user"] == "<user>"


def test_a_required_variable_has_no_default(lab_copy):
    folder = lab_copy
    edit(folder, lambda d: d.setdefault("variables", {}).update({"user": {"required": True, "default": "x"}}))
    with pytest.raises(LabSpecError, match="a required variable has no default"):
        labs.load(folder)


def test_a_step_may_have_an_observe_form_and_a_value_only_observe_mode_finds(lab_copy):
    """`observe: COMMAND` is the command observe mode runs instead of the step's (it only looks); a capture
    with `observe:` and no `match:` is a value only observe mode finds (where the student's clone is)."""
    def change(d):
        d["steps"][0]["capture"] = {"clone": {"observe": "ls -d ~/*/labs/07-FS_layering"}}
        d["steps"][1]["observe"] = "ls -l {{ captured.clone }}"
    edit(lab_copy, change)
    lab = labs.load(lab_copy)
    first, second = lab.steps[0], lab.steps[1]
    assert first.captures == (("clone", None, "ls -d ~/*/labs/07-FS_layering"),)
    assert second.observe is False and second.looks  # observe mode runs its form; watch treats it as an action
    plan = labs.Plan(lab, lab.values())
    assert plan.command(second, {"captured.clone": "/home/me/c"}, observing=True) == "ls -l /home/me/c"
    assert plan.command(second, {"captured.clone": "/home/me/c"}) == plan.command(second)  # its own run otherwise


def test_a_step_says_on_which_machine_it_runs_in_plain_yaml():
    lab = labs.find("11")  # `on: swarmnode1` (YAML 1.1 reads the bare key `on` as true)
    assert lab.machines == ("swarmmanager", "swarmnode1", "swarmnode2")
    where = {step.id: step.on for step in lab.steps}
    assert where["init"] is None and where["join-node1"] == "swarmnode1" and where["join-node2"] == "swarmnode2"
