"""The course's files, byte for byte: every lab that says where it comes from (`course:` in lab.yaml) pins
the sha256 of each file it copied from the course's repository at that commit; the files on disk must
match, and nothing else may sit among them."""

from __future__ import annotations

import hashlib

import pytest

from checker import lab as labs
from tests.variants import LAB07

LABS = sorted(p for p in LAB07.parent.iterdir() if (p / "lab.yaml").is_file())


@pytest.mark.parametrize("folder", LABS, ids=lambda p: p.name)
def test_the_courses_files_are_the_courses(folder):
    lab = labs.load(folder)
    pinned = lab.course.get("files") or {}
    for rel, digest in pinned.items():
        assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == digest, f"{rel} differs from the course's"
    course_dir = folder / "course"
    if course_dir.is_dir():
        on_disk = {p.relative_to(folder).as_posix() for p in course_dir.rglob("*") if p.is_file()}
        assert on_disk == set(pinned), "course/ must hold the course's files, and only those"
    if pinned:
        assert lab.course["repository"] == "sunnyvale-academy/SNY.OSS.DCK.01.01.00" and len(lab.course["commit"]) == 40


def test_lab_07_uploads_the_courses_folder_as_its_build_context():
    lab = labs.load(LAB07)
    assert sorted(f.dest for f in lab.files) == ["Dockerfile-my-base-image", "Dockerfile-my-image", "README.md",
                                                 "hello.sh"]
    assert {f.source for f in lab.files} == set(lab.course["files"])
