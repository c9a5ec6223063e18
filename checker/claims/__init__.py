"""Claims: small pure functions over facts, registered by name and referenced from lab.yaml.

    @check("cmd_layer_empty", refs={"image": "my_image", ...}, options={"max": "64KiB"})
    def cmd_layer_empty(facts, image, ...) -> Verdict

`refs` are the facts a check reads (a step id or a probe's `as` name; lab.yaml may rename them under
`with:`), `options` its tunable values. A check returns a Verdict (ok, expected, observed, hint); a
fact the run could not gather makes the claim `error` (not judged), never a silent pass.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from checker.facts import Facts, MissingFact

PASS, FAIL, ERROR = "pass", "fail", "error"


@dataclass
class Verdict:
    ok: bool
    expected: str
    observed: str
    hint: str | None = None
    details: dict = field(default_factory=dict)


@dataclass
class ClaimResult:
    id: str
    title: str
    verdict: str  # pass | fail | error
    expected: str
    observed: str
    hint: str
    details: dict
    points: float
    max_points: float

    @property
    def passed(self) -> bool:
        return self.verdict == PASS


@dataclass(frozen=True)
class Check:
    name: str
    fn: Callable[..., Verdict]
    refs: dict[str, str]
    options: dict[str, Any]

    def check_args(self, args: dict, facts_known: set[str], variables: set[str]) -> str | None:
        for key, value in args.items():
            if key in self.refs:
                if value not in facts_known:
                    return f"`with.{key}`: no step or fact named {value!r}"
            elif key not in self.options:
                allowed = ", ".join(sorted(self.refs) + sorted(self.options))
                return f"`with.{key}` is not a parameter of {self.name} (it takes: {allowed})"
        for key, default in self.refs.items():
            if key not in args and default not in facts_known:
                return f"{self.name} reads {default!r} (set `with.{key}` to the step or fact that holds it)"
        return None


CLAIMS: dict[str, Check] = {}


def check(name: str, *, refs: dict[str, str], options: dict[str, Any] | None = None):
    def register(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        CLAIMS[name] = Check(name, fn, dict(refs), dict(options or {}))
        return fn

    return register


_SIZE = re.compile(r"^\s*([0-9.]+)\s*(B|kB|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SCALE = {None: 1, "B": 1, "kB": 1000, "KB": 1000, "KiB": 1024, "MB": 1000**2, "MiB": 1024**2,
          "GB": 1000**3, "GiB": 1024**3}


def size_option(value: Any) -> int:
    """An option given as bytes or with a unit: 65536, '64KiB', '1MB'."""
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"not a size: {value!r}")
    return int(float(match.group(1)) * _SCALE[match.group(2)])


def _resolve(facts: Facts, name: str) -> Any:
    return facts.step(name) if name in facts.steps else facts.get(name)


def evaluate(claim_specs, facts: Facts) -> list[ClaimResult]:
    results = []
    for spec in claim_specs:
        chk = CLAIMS[spec.check]
        kwargs: dict[str, Any] = {}
        try:
            for param, default in chk.refs.items():
                kwargs[param] = _resolve(facts, spec.args.get(param, default))
            for param, default in chk.options.items():
                kwargs[param] = spec.args.get(param, default)
            verdict = chk.fn(facts, **kwargs)
        except MissingFact as exc:
            results.append(ClaimResult(spec.id, spec.title, ERROR, "", f"not judged: {exc}",
                                       "fix what stopped the run (see the failed step above), then run again",
                                       {}, 0.0, spec.points))
            continue
        results.append(ClaimResult(
            spec.id, spec.title, PASS if verdict.ok else FAIL, verdict.expected, verdict.observed,
            "" if verdict.ok else (verdict.hint or spec.hint), verdict.details,
            spec.points if verdict.ok else 0.0, spec.points))
    return results


from checker.claims import environment, lab_text, layering  # noqa: E402,F401  (registers the checks)
