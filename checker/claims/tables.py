"""Checks over the tables Docker's CLI prints (`docker ps`, `docker images`, …), parsed by `parse: table`,
and over what a container printed. General: the lab says which rows it means."""

from __future__ import annotations

import re

from checker.checks import check
from checker.facts import Facts, MissingFact, not_run_here
from checker.records import StepFact, Verdict


def _rows(table: StepFact) -> list[dict]:
    if table.status == "skipped":
        raise not_run_here(table)
    return list(table.parsed or [])


def _matches(row: dict, where: dict) -> bool:
    return all(re.search(str(pattern), str(row.get(column, ""))) for column, pattern in where.items())


def _where_text(where: dict) -> str:
    return ", ".join(f"{column} ~ {pattern}" for column, pattern in where.items()) or "any row"


def _validate_where(args: dict, facts_known: set[str]) -> str | None:
    if "table" not in args or args["table"] not in facts_known:
        return "`with.table` names the step whose table is read"
    extra = sorted(set(args) - {"table", "where", "rows", "before", "removed_later"})
    if extra:
        return (f"`with.{extra[0]}` is not a parameter of table_rows (it takes: table, where, rows, before, "
                f"removed_later)")
    where = args.get("where", {})
    if not isinstance(where, dict):
        return "`with.where` maps a column to a regular expression"
    for pattern in where.values():
        if "{{" not in str(pattern):
            try:
                re.compile(str(pattern))
            except re.error as exc:
                return f"`with.where`: {pattern!r} is not a regular expression: {exc}"
    if "removed_later" in args and args["removed_later"] not in facts_known:
        return "`with.removed_later` names the lab's step that removes what the row shows"
    if args.get("rows", "some") not in ("some", "none"):
        return "`with.rows` is some or none"
    return None


# Podman names every image in full where Docker shortens it: docker.io/library/ubuntu (Docker: ubuntu),
# localhost/friendlyhello for an image built here (Docker: friendlyhello).
PODMAN_PREFIXES = ("localhost/", "docker.io/library/", "docker.io/")
IMAGE_COLUMNS = ("REPOSITORY", "IMAGE")


def docker_name(ref: str) -> str:
    """An image reference as Docker's tables show it."""
    return next((ref[len(prefix):] for prefix in PODMAN_PREFIXES if ref.startswith(prefix)), ref)


def as_docker_names(rows: list[dict], facts: Facts) -> list[dict]:
    """Podman's table rows with their image names as Docker shows them (the lab's text names them so)."""
    if not facts.podman:
        return rows
    return [{k: docker_name(v) if k in IMAGE_COLUMNS and isinstance(v, str) else v for k, v in row.items()}
            for row in rows]


@check("table_rows", refs={}, validate=_validate_where)
def table_rows(facts: Facts, table: str, where: dict | None = None, rows: str = "some",
               before: bool = False, removed_later: str | None = None) -> Verdict:
    """`rows: some`: the table lists a row whose columns match `where` (regular expressions);
    `rows: none`: it lists none. `before: true`: the sentence is about the machine before the lab's steps,
    which observe mode (it looks after them) cannot see. `removed_later: STEP`: the lab's own step STEP
    removes what the row shows, so observe mode, looking after it, finds no row: not judged, not failed."""
    if before and facts.observe:
        raise MissingFact("this is about the machine before the lab's steps; observe mode looks after them")
    step = facts.step(table)
    where = where or {}
    found = [row for row in as_docker_names(_rows(step), facts) if _matches(row, where)]
    shown = "; ".join(" ".join(f"{k}={v}" for k, v in row.items() if v) for row in found[:3])
    observed = f"{len(found)} row(s) of `{step.command}` with {_where_text(where)}" + (f": {shown}" if shown else "")
    if rows == "none":
        return Verdict(not found, f"`{step.command}` lists no row with {_where_text(where)}", observed)
    if removed_later and facts.observe and not found:
        raise MissingFact(f"{observed}: the lab's step {removed_later!r} removes it, and observe mode looks after "
                          "the lab", what_to_do="run --observe before that step, or use --watch while you type")
    return Verdict(bool(found), f"`{step.command}` lists a row with {_where_text(where)}", observed)


@check("printed", refs={"run": "run"}, options={"text": None, "logs": "logs"})
def printed(facts: Facts, run: StepFact, text: str, logs: str) -> Verdict:
    """The container printed `text`: in the step's own output, or (observe mode: the step did not run here)
    in the container's log, which the engine keeps until the container is removed."""
    logs = facts.peek(logs)  # the `logs` probe (observe mode)
    if run.result is not None:
        output, where = run.result.stdout + run.result.stderr, "its output"
    elif logs is not None:
        output, where = logs.stdout + logs.stderr, "the container's log (docker logs)"
    else:
        raise MissingFact("the container is gone, and with it its log",
                          what_to_do="keep the container (no `docker rm`) until the check has run")
    ok = text in output
    lines = [ln for ln in output.splitlines() if ln.strip()]
    return Verdict(ok, f"the container prints {text!r}",
                   f"{where}: {' ⏎ '.join(lines[:2]) or 'nothing'}" + (" …" if len(lines) > 2 else ""))
