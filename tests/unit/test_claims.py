"""Claims on facts where the recorded runs have no example: the pull that reports fewer layers than the image
has, and an image that did not come from a registry."""

from __future__ import annotations

from checker.claims.layering import layers_pulled_separately
from checker.facts import Facts, Image
from checker.parsers import parse_pull
from checker.records import Result, StepFact

IMAGE = Image("sha256:abc", ("ubuntu:18.04",), ("sha256:1", "sha256:2", "sha256:3"), 1000, "overlay2", {}, None, "",
              ("ubuntu@sha256:def",))


def pull_step(text: str) -> StepFact:
    return StepFact("pull", "pull", "docker pull ubuntu:18.04", "passed", Result(0, text, "", 1.0), parse_pull(text))


def test_a_pull_that_reports_fewer_layers_than_the_image_has_fails():
    text = "18.04: Pulling from library/ubuntu\naaaaaaaaaaaa: Pull complete\nbbbbbbbbbbbb: Pull complete\n"
    verdict = layers_pulled_separately(Facts(), pull_step(text), IMAGE)
    assert not verdict.ok and "2 layer(s) reported separately" in verdict.observed


def test_an_image_that_did_not_come_from_a_registry_fails():
    made_here = Image(**{**IMAGE.__dict__, "digests": ()})
    verdict = layers_pulled_separately(Facts(observe=True), StepFact("pull", "pull", "", "skipped"), made_here)
    assert not verdict.ok and "from a registry: no" in verdict.observed


def test_the_students_mark_on_the_image():
    from checker.claims.marks import image_marked

    mine = Image(**{**IMAGE.__dict__, "tags": ("my-image:1.0",), "labels": {"check-lab.student": "alice"}})
    assert image_marked(Facts(), mine, "check-lab.student", "alice").ok
    copied = image_marked(Facts(), mine, "check-lab.student", "bob")
    assert not copied.ok and copied.observed == "my-image:1.0 has check-lab.student=alice: alice's mark, not bob's"
    bare = image_marked(Facts(), Image(**{**mine.__dict__, "labels": {}}), "check-lab.student", "alice")
    assert not bare.ok and bare.observed == "my-image:1.0 has no label check-lab.student"
    assert "--label check-lab.student=alice" in bare.hint


def test_a_full_event_log_still_holding_everything_since_the_image_was_made_judges_a_container_that_never_ran():
    """Observe mode's stop claim after `--rm` removed the containers: the engine keeps its last 256 events. A
    full log whose oldest event is older than the lab's image holds every container of that image: one
    that is not in it never ran (judged); a full log that starts after the image was made may have lost it
    (not judged). Seen on a VM that had run many labs before: four containers started, five stopped by name."""
    import pytest

    from checker.claims.layering import containers_stopped
    from checker.facts import EVENTS_KEPT, ContainerEvent, ContainerEvents, MissingFact
    from checker.resources import epoch

    made = epoch("2026-12-06T06:18:40Z")
    image = Image(**{**IMAGE.__dict__, "tags": ("my-image:1.0",), "created": "2026-12-06T06:18:40Z"})
    names = [f"my_container_{i}" for i in range(1, 6)]
    events = tuple(ContainerEvent(n, action, "my-image:1.0", made + 10 + i + step / 10, 137 if action == "die" else None)
                   for i, n in enumerate(names[:4]) for step, action in enumerate(("create", "start", "die", "destroy")))

    def judged(oldest: float):
        facts = Facts(observe=True)
        facts.gathered.update({"image": image, "events": ContainerEvents(events, None, True, oldest)})
        return containers_stopped(facts, [], names, "events", "image")

    verdict = judged(oldest=made - 300)
    assert verdict.ok and "never ran here: my_container_5" in verdict.observed and EVENTS_KEPT == 256
    with pytest.raises(MissingFact, match="my_container_5 no longer exist"):
        judged(oldest=made + 5)
