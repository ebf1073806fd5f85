"""junit.xml from result records: one suite per account, `account.user` as class, the scope set as name.

A regression is a <failure> (expected vs actual, with the diagnosis); infrastructure trouble and unknown
screens are <error>, so CI reporters never show a HubSpot outage as a product failure. Each case carries
its outcome, expectation and blocking scopes as properties, and a [[ATTACHMENT|path]] line for its
decisive screenshot (the Jenkins attachments convention).
"""

from __future__ import annotations

import itertools
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from scopematrix.model import CellResult, Outcome

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: str) -> str:
    """Text XML 1.0 can carry: a control character becomes a visible \\xNN."""
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", value)


def _properties(parent: ET.Element, values: dict[str, str]) -> None:
    props = ET.SubElement(parent, "properties")
    for name, value in values.items():
        ET.SubElement(props, "property", name=name, value=value)


def _case(suite: ET.Element, r: CellResult, run_dir: Path) -> tuple[int, int]:
    case = ET.SubElement(suite, "testcase", classname=f"{r.account}.{r.user}", name=r.scope_set,
                         time=f"{r.duration_s:.3f}")  # fmt: skip
    d = r.diagnosis
    _properties(
        case,
        {
            "outcome": r.outcome.value,
            "expected": r.expected.value if r.expected else "",
            "blocking_scopes": " ".join(d.blocking_scopes) if d else "",
            "must_install": "true" if r.must_install else "false",
        },
    )
    failures = errors = 0
    why = d.summary if d else ""
    if r.regression:
        expected = r.expected.value if r.expected else "?"
        failure = ET.SubElement(case, "failure", type="regression",
                                message=f"expected {expected}, got {r.outcome.value}")  # fmt: skip
        failure.text = "\n".join(x for x in (why, r.heading, r.message) if x)
        failures = 1
    elif not r.matches_expectation:  # infrastructure or an unknown screen: not a product failure
        kind = "unknown_screen" if r.outcome is Outcome.UNRECOGNIZED else "infrastructure"
        error = ET.SubElement(case, "error", type=kind, message=f"{r.outcome.value}: {r.message}"[:500])
        error.text = "\n".join(x for x in (r.error, r.html_path) if x)
        errors = 1
    out = [f"{r.cell_id}: {r.outcome.label}" + (f" - {why}" if why else "")]
    if r.decisive is not None:
        out.append(f"[[ATTACHMENT|{(run_dir / r.decisive.path).resolve()}]]")
    ET.SubElement(case, "system-out").text = "\n".join(out)
    return failures, errors


def write_junit(path: Path, results: Sequence[CellResult], run_id: str, started_at: str) -> None:
    root = ET.Element("testsuites", name=f"scopematrix {run_id}")
    totals = [0, 0, 0, 0.0]
    ordered = sorted(results, key=lambda r: (r.account, r.user, r.scope_set))
    for n, (account, group) in enumerate(itertools.groupby(ordered, key=lambda r: r.account)):
        cells = list(group)
        suite = ET.SubElement(root, "testsuite", name=account, id=str(n), package="scopematrix",
                              timestamp=started_at[:19], hostname="localhost")  # fmt: skip
        failures = errors = 0
        for r in cells:
            f, e = _case(suite, r, path.parent)
            failures, errors = failures + f, errors + e
        duration = sum(r.duration_s for r in cells)
        suite.attrib.update(tests=str(len(cells)), failures=str(failures), errors=str(errors), skipped="0",
                            time=f"{duration:.3f}")  # fmt: skip
        totals = [totals[0] + len(cells), totals[1] + failures, totals[2] + errors, totals[3] + duration]
    root.attrib.update(tests=str(totals[0]), failures=str(totals[1]), errors=str(totals[2]),
                       time=f"{totals[3]:.3f}")  # fmt: skip
    for element in root.iter():  # XML 1.0 has no place for control characters: escape them visibly
        element.text = xml_text(element.text) if element.text is not None else None
        for key, value in element.attrib.items():
            element.attrib[key] = xml_text(value)
    ET.indent(root)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
