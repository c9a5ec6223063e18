"""The checks, one module per topic; importing this package registers them all (checker.checks.registry).

A new module of checks is one file here and one name in the import below."""

from checker.claims import (environment, lab_text, layering, limits, marks, matcher, network, storage,  # noqa: F401
                            swarm, tables)
