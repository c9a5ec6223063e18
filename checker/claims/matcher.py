"""The YAML matcher: a claim that compares one fact with expected values needs no Python.

    - id: hello-printed
      title: The container prints its greeting
      expect:
        fact: hello.stdout                 # a step (stdout, stderr, exit_status, status, parsed…) or a fact
        contains: "Hello from Docker!"     # equals, at_least, at_most, contains, matches (all must hold)
      hint: …

`fact` is a path: its first part names a step or a gathered fact (as `with:` does), the rest walks into it:
attributes, mapping keys (`[Server/Engine/Version]` for keys with dots or slashes), list positions, and
`count` for how many items there are. Values may use the lab's variables (`at_least: "{{ minimum }}"`).
`at_least` and `at_most` compare numbers, sizes with units (`36K`, `64KiB`, `4.1kB`) or versions (`20.10.24`).
"""

from __future__ import annotations

import re
from dataclasses import fields
from typing import Any

from checker.checks import check, resolve
from checker.facts import Facts, MissingFact, not_run_here
from checker.records import StepFact, Verdict
from checker.units import parse_size

MATCHERS = ("equals", "at_least", "at_most", "contains", "matches")
_TOKEN = re.compile(r"\[([^\]]*)\]|([^.\[\]]+)")


def path_parts(path: str) -> list[str]:
    parts = [bracketed if bracketed else plain for bracketed, plain in _TOKEN.findall(str(path))]
    if not parts or "".join(parts).strip() == "":
        raise ValueError(f"not a fact path: {path!r}")
    return parts


def validate(args: dict, facts_known: set[str]) -> str | None:
    if "fact" not in args or not isinstance(args["fact"], str):
        return "`expect.fact` names what to compare (a step or fact, e.g. hello.stdout)"
    try:
        root = path_parts(args["fact"])[0]
    except ValueError as exc:
        return f"`expect.fact`: {exc}"
    if root not in facts_known:
        return f"`expect.fact`: no step or fact named {root!r}"
    extra = sorted(set(args) - {"fact", *MATCHERS})
    if extra:
        return f"`expect.{extra[0]}` is not a matcher (matchers: {', '.join(MATCHERS)})"
    matchers = [m for m in MATCHERS if m in args]
    if not matchers:
        return f"`expect` needs a matcher: {', '.join(MATCHERS)}"
    for name in matchers:
        value = args[name]
        if isinstance(value, (dict, list)) or value is None:
            return f"`expect.{name}` must be a single value"
    if "matches" in args and "{{" not in str(args["matches"]):
        try:
            re.compile(str(args["matches"]))
        except re.error as exc:
            return f"`expect.matches` is not a regular expression: {exc}"
    return None


def step_value(step: StepFact, attr: str) -> Any:
    if attr in ("stdout", "stderr", "exit_status", "duration", "timed_out"):
        if step.status == "skipped":
            raise not_run_here(step)
        if step.result is None:
            raise MissingFact(f"step {step.step_id!r} did not run")
        return getattr(step.result, attr)
    if attr == "output":
        return step_value(step, "stdout") + step_value(step, "stderr")
    if attr == "parsed" and step.status == "skipped":
        raise not_run_here(step)
    return getattr(step, attr)


def walk(value: Any, parts: list[str], path: str) -> Any:
    for part in parts:
        if isinstance(value, StepFact):
            if part not in {f.name for f in fields(StepFact)} | {"stdout", "stderr", "exit_status", "output",
                                                                  "duration", "timed_out"}:
                raise MissingFact(f"{path}: a step has no {part!r}")
            value = step_value(value, part)
        elif part == "count" and isinstance(value, (list, tuple, dict, str)):
            value = len(value)
        elif isinstance(value, dict):
            if part not in value:
                raise MissingFact(f"{path}: no {part!r} in it (it has: {', '.join(map(str, list(value)[:12]))})")
            value = value[part]
        elif isinstance(value, (list, tuple)):
            if not re.fullmatch(r"-?\d+", part) or not -len(value) <= int(part) < len(value):
                raise MissingFact(f"{path}: no item {part} (there are {len(value)})")
            value = value[int(part)]
        elif value is not None and hasattr(value, part) and not callable(getattr(value, part)):
            value = getattr(value, part)
        else:
            raise MissingFact(f"{path}: {type(value).__name__} has no {part!r}")
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+(\.\d+)?\s*", value):
        return float(value)
    return None


def _size(value: Any) -> float | None:
    try:
        return parse_size(value) if isinstance(value, str) and re.search(r"[A-Za-z]", value) else None
    except ValueError:
        return None


def _version(value: Any) -> tuple[int, ...] | None:
    match = re.search(r"\d+(?:\.\d+)+", str(value))
    return tuple(int(p) for p in match.group(0).split(".")) if match else None


def order(actual: Any, expected: Any) -> int | None:
    """-1, 0 or 1 as actual is below, at or above expected; None if they do not compare."""
    for convert in (_number, _size, _version):
        a, b = convert(actual), convert(expected)
        if a is not None and b is not None:
            if convert is _version:
                width = max(len(a), len(b))
                a, b = a + (0,) * (width - len(a)), b + (0,) * (width - len(b))
            return (a > b) - (a < b)
    return None


def equal(actual: Any, expected: Any) -> bool:
    a, b = _number(actual), _number(expected)
    if a is not None and b is not None:
        return a == b
    if isinstance(expected, bool) or isinstance(actual, bool):
        return str(actual).lower() == str(expected).lower()
    return str(actual).strip() == str(expected).strip()


def holds(name: str, actual: Any, expected: Any) -> bool:
    if name == "equals":
        return equal(actual, expected)
    if name in ("at_least", "at_most"):
        sign = order(actual, expected)
        return sign is not None and (sign >= 0 if name == "at_least" else sign <= 0)
    if name == "contains":
        if isinstance(actual, (list, tuple, set)):
            return any(equal(item, expected) or str(expected) in str(item) for item in actual)
        return str(expected) in ("" if actual is None else str(actual))
    if name == "matches":
        return re.search(str(expected), "" if actual is None else str(actual), re.M) is not None
    raise ValueError(name)


def shown(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else repr(value)
    text = " ⏎ ".join(line for line in text.strip().splitlines() if line.strip()) if isinstance(value, str) else text
    return text if len(text) <= limit else text[: limit - 1] + "…"


WORDS = {"equals": "is", "at_least": "is at least", "at_most": "is at most", "contains": "contains",
         "matches": "matches"}


@check("expect", refs={}, validate=validate)
def expect(facts: Facts, fact: str, **matchers) -> Verdict:
    parts = path_parts(fact)
    value = walk(resolve(facts, parts[0]), parts[1:], fact)
    wanted = [(name, matchers[name]) for name in MATCHERS if name in matchers]
    failed = [(name, v) for name, v in wanted if not holds(name, value, v)]
    expected = " and ".join(f"{WORDS[name]} {shown(v, 80)!s}" for name, v in wanted)
    return Verdict(not failed, f"{fact} {expected}", f"{fact} = {shown(value)}",
                   details={"fact": fact, "value": value if isinstance(value, (str, int, float, bool)) else
                            shown(value, 400)})
