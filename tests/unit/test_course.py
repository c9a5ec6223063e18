"""`check-lab course`: which labs run, and what each gets of `--set`."""

from __future__ import annotations

import pytest

from checker import lab as labs
from checker.course import run_course, select, split_sets
from checker.errors import UsageError
from checker.exitcodes import ExitStatus

ALL = labs.available()


def ids(chosen) -> list[str]:
    return [lab.id for lab in chosen]


def test_ranges_and_single_labs_in_the_courses_order():
    assert ids(select(ALL, "08,02-04")) == ["02", "03", "04", "08"]
    assert ids(select(ALL, None)) == ids(ALL)


@pytest.mark.parametrize("spec, message", [
    ("2-x", "is not a lab id or a range"),
    ("06-04", "runs backwards"),
    ("99", "no lab 99"),
])
def test_a_selection_that_names_no_lab_is_refused_with_its_cause(spec, message):
    with pytest.raises(UsageError, match=message):
        select(ALL, spec)


def test_every_lab_of_part_one_runs_on_the_single_docker_vm():
    assert all(lab.on_one_machine for lab in select(ALL, "00-10,16"))


def test_each_lab_gets_the_values_it_has_and_a_value_no_lab_has_is_a_mistake():
    chosen = select(ALL, "03,06")
    assert split_sets(chosen, {"user": "me", "requests": "10"}) == {"03": {"user": "me"}, "06": {"requests": "10"}}
    with pytest.raises(UsageError, match="none of these labs has a variable 'colour'"):
        split_sets(chosen, {"colour": "red"})


class NoMachine:
    """Where nothing may be run: the lab below must stop before it touches the machine."""

    description = "nowhere"
    closed = False

    def close(self) -> None:
        self.closed = True

    def __getattr__(self, name):
        raise AssertionError(f"the course touched the machine ({name})")


def test_a_lab_that_needs_a_value_nobody_gave_is_not_run_and_says_which():
    machine, seen = NoMachine(), []
    results = run_course(select(ALL, "03"), machine, {}, seen.append)
    assert [r.label for r in seen] == ["03"] and results == seen
    assert results[0].report is None and results[0].exit_code == ExitStatus.USAGE
    assert "not run: lab 03 needs --set user=" in results[0].error
    assert machine.closed
