"""Checks on the student's mark (`--student ID`): what a lab's student form of a step leaves on the student's
work, so that work copied from another student's machine does not pass as theirs."""

from __future__ import annotations

from checker.checks import check
from checker.facts import Facts, Image
from checker.records import Verdict


@check("image_marked", refs={"image": "my_image"}, options={"label": "check-lab.student", "student": "{{ student }}"})
def image_marked(facts: Facts, image: Image, label: str, student: str) -> Verdict:
    """The image carries the label `label` with the student's ID (`docker build --label LABEL=ID`)."""
    name = image.tags[0] if image.tags else image.id[:19]
    found = image.labels.get(label)
    if found is None:
        observed = f"{name} has no label {label}" + (f" (its labels: {', '.join(sorted(image.labels))})"
                                                       if image.labels else "")
    else:
        observed = f"{name} has {label}={found}" + ("" if found == student else f": {found}'s mark, not {student}'s")
    return Verdict(found == student, f"{name} has the label {label}={student}", observed,
                   f"build it yourself, with `--label {label}={student}` added to the lab's `docker build`",
                   details={"label": label, "found": found, "student": student})
