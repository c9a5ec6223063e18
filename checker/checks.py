"""The registry of checks: small pure functions over facts, registered by name, referenced from lab.yaml.

    @check("cmd_layer_empty", refs={"image": "my_image"}, options={"max": "64KiB"})
    def cmd_layer_empty(facts, image, max) -> Verdict

`refs` are the facts a check reads (a step id or a probe's `as` name; lab.yaml may rename them under
`with:`), `options` its tunable values (lab.yaml sets them under `with:`, with the lab's variables:
`with: {image: "{{ image_name }}"}`; a default may use them too, `"{{ resources.containers }}"`; an option
whose default is None must be given). A check returns a Verdict; a fact the run could not gather makes the
claim "not judged" (verdict `error`), never a silent pass.

The checks live in checker/claims/ (one module per topic, listed in its __init__); `registry()` loads them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from checker.facts import Facts, MissingFact, NotApplicable
from checker.records import FAIL, NOT_APPLICABLE, NOT_JUDGED, PASS, ClaimResult, Verdict
from checker.units import size_bytes


@dataclass(frozen=True)
class Check:
    name: str
    fn: Callable[..., Verdict]
    refs: dict[str, str]
    options: dict[str, Any]
    # A check that validates its own `with:` (beyond refs and options), e.g. the YAML matcher.
    validate: Callable[[dict, set[str]], str | None] | None = None

    def check_args(self, args: dict, facts_known: set[str]) -> str | None:
        if self.validate is not None:
            return self.validate(args, facts_known)
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
        for key, default in self.options.items():
            if default is None and key not in args:
                return f"{self.name} needs `with.{key}`"
        return None


CLAIMS: dict[str, Check] = {}


def check(name: str, *, refs: dict[str, str], options: dict[str, Any] | None = None,
          validate: Callable[[dict, set[str]], str | None] | None = None):
    def register(fn: Callable[..., Verdict]) -> Callable[..., Verdict]:
        if name in CLAIMS and CLAIMS[name].fn.__qualname__ != fn.__qualname__:
            raise ValueError(f"a check named {name!r} is registered already ({CLAIMS[name].fn.__module__})")
        CLAIMS[name] = Check(name, fn, dict(refs), dict(options or {}), validate)
        return fn

    return register


def registry() -> dict[str, Check]:
    """Every registered check (importing checker.claims registers them)."""
    import checker.claims  # noqa: F401

    return CLAIMS


def size_option(value: Any) -> int:
    """An option given as bytes or with a unit: 65536, '64KiB', '1MB'."""
    return size_bytes(value)


def resolve(facts: Facts, name: str) -> Any:
    """A step's record (by step id) or a gathered fact (by name)."""
    return facts.step(name) if name in facts.steps else facts.get(name)


def evaluate(claim_specs, facts: Facts) -> list[ClaimResult]:
    """Judge each claim (ClaimSpec with its `with:` already rendered) on the facts."""
    checks = registry()
    results = []
    try:
        for spec in claim_specs:
            read = facts.reading()
            result = _judge(checks[spec.check], spec, facts)
            result.evidence = tuple(sorted(read))
            results.append(result)
    finally:
        facts.read = None
    return results


def _judge(chk: Check, spec, facts: Facts) -> ClaimResult:
    """One claim's verdict; a fact the run could not gather makes it not judged, never a silent pass."""
    lacking = facts.lacking(spec.needs)
    if lacking:
        return ClaimResult(spec.id, spec.title, NOT_APPLICABLE, spec.title, f"not applicable here: {lacking}", "",
                           {}, 0.0, 0.0)
    try:
        if chk.validate is not None:
            verdict = chk.fn(facts, **spec.args)
        else:
            kwargs: dict[str, Any] = {}
            for param, default in chk.refs.items():
                kwargs[param] = resolve(facts, spec.args.get(param, default))
            for param, default in chk.options.items():
                kwargs[param] = spec.args.get(param, default)
            verdict = chk.fn(facts, **kwargs)
    except NotApplicable as exc:
        return ClaimResult(spec.id, spec.title, NOT_APPLICABLE, spec.title, f"not applicable here: {exc}", "",
                           {}, 0.0, 0.0)
    except MissingFact as exc:
        return ClaimResult(spec.id, spec.title, NOT_JUDGED, spec.title, f"not judged: {exc}",
                           exc.what_to_do or "fix what stopped the run (see the failed step above), then run again",
                           {}, 0.0, spec.points)
    except Exception as exc:  # a bug in a check must not cost the run its report
        return ClaimResult(spec.id, spec.title, NOT_JUDGED, spec.title,
                           f"not judged: the check {spec.check} failed ({type(exc).__name__}: {exc})",
                           "this is a bug of check-lab: please report it, with the JSON report", {}, 0.0, spec.points)
    return ClaimResult(spec.id, spec.title, PASS if verdict.ok else FAIL, verdict.expected, verdict.observed,
                       "" if verdict.ok else (verdict.hint or spec.hint), verdict.details,
                       spec.points if verdict.ok else 0.0, spec.points)
