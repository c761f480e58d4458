"""The real TensorRT Python API the double is checked against, as a snapshot kept in the repo.

``api_reference.json`` holds, for TensorRT 10.13 (from the ``tensorrt-stubs`` package) and 11.4 (from a
listing of the 11.4 bindings' classes, members, enum values and signatures), every class with its members
(enum members with their integer values), class bases, module-level names and method parameter names;
plus the 8.6-only legacy names that the TensorRT 8.6 API documentation names. The conformance tests in
test_trt_emulator.py read only this file, so they run (never skip) on every machine.

Regenerate after changing TensorRT versions::

    python tests/trt_emulator/api_reference.py --stubs DIR_WITH_tensorrt.pyi --api114 trt-11.4-api.txt \\
        --trt86-doc trt-api.md

(``DIR_WITH_tensorrt.pyi`` is ``site-packages/tensorrt_bindings`` once ``pip install --no-deps
tensorrt-stubs==10.13.0.35.1`` ran.)
"""

from __future__ import annotations

import argparse
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).with_name("api_reference.json")

Members = dict[str, dict[str, "int | None"]]
Signatures = dict[tuple[str, str], list[list[str]]]


# ------------------------------------------------------------------------------------------------ parsers


def parse_stubs(stub_dir: Path) -> tuple[Members, dict[str, list[str]], set[str]]:
    """Classes (nested ones as ``Outer.Inner``) -> {member: enum value or None}, class bases, module names.

    The .pyi is not valid Python (default-argument order), so it is read line by line, skipping docstrings.
    """
    classes: Members = {}
    bases: dict[str, list[str]] = {}
    stack: list[str] = []
    in_doc = False
    for line in (stub_dir / "tensorrt.pyi").read_text().splitlines():
        if line.count('"""') % 2 == 1:
            in_doc = not in_doc
            continue
        if in_doc or not line.strip():
            continue
        indent = (len(line) - len(line.lstrip(" "))) // 4
        m = re.match(r"^\s*class (\w+)(?:\((.*))?:?", line)
        if m and indent <= len(stack):
            stack = stack[:indent] + [m.group(1)]
            qual = ".".join(stack)
            classes.setdefault(qual, {})
            bases[qual] = re.findall(r"\w+", m.group(2) or "")
            if indent:
                classes[".".join(stack[:-1])][m.group(1)] = None
            continue
        if indent > len(stack) or not stack:
            continue
        stack = stack[:indent]
        if not stack:
            continue
        m = re.match(r"^\s*(?:def )?(\w+)\s*[:(=]", line)
        if m:
            v = re.search(r"# value = <[\w.]+: (-?\d+)>", line)
            classes[".".join(stack)][m.group(1)] = int(v.group(1)) if v else None
    module = set(classes)
    init = (stub_dir / "__init__.pyi").read_text()
    module |= set(re.findall(r"^from tensorrt_bindings\.tensorrt import (\w+)", init, re.M))
    module |= set(re.findall(r"^def (\w+)", init, re.M))
    module |= set(re.findall(r"^(\w+)\s*:", init, re.M))
    return classes, bases, module


def parse_api_114(path: Path) -> tuple[Members, set[str]]:
    """The 11.4 listing: ``class X:`` blocks with ``  member [kind]`` lines and ``MEMBERS: A=0, ...``."""
    classes: Members = {}
    module: set[str] = set()
    cur: str | None = None
    for line in path.read_text().splitlines():
        m = re.match(r"^class (\w+):", line)
        if m:
            cur = m.group(1)
            classes[cur] = {}
            module.add(cur)
            continue
        m = re.match(r"^(\w+) = ", line)
        if m:
            module.add(m.group(1))
            cur = None
            continue
        if cur is None:
            continue
        m = re.match(r"^  MEMBERS: (.*)$", line)
        if m:
            for item in m.group(1).split(", "):
                name, _, value = item.partition("=")
                classes[cur][name.strip()] = int(value)
            continue
        m = re.match(r"^  (\w+) \[(\w+)", line)
        if m:
            classes[cur].setdefault(m.group(1), None)
            if m.group(2) == "Severity":
                classes.setdefault(f"{cur}.Severity", {})[m.group(1)] = None
    return classes, module


def _param_names(inner: str) -> list[str]:
    """Parameter names of a signature's inside, splitting only at top-level commas."""
    pieces, depth, cur = [], 0, ""
    for ch in inner:
        depth += ch in "[(<"
        depth -= ch in "])>"
        if ch == "," and depth == 0:
            pieces.append(cur)
            cur = ""
        else:
            cur += ch
    pieces.append(cur)
    names = [m.group(1) for p in pieces if (m := re.match(r"\s*\*{0,2}(\w+)", p))]
    return [n for n in names if n not in ("self", "this")]


def stub_signatures(stub_dir: Path) -> Signatures:
    sigs: Signatures = {}
    stack: list[str] = []
    in_doc = False
    for line in (stub_dir / "tensorrt.pyi").read_text().splitlines():
        if line.count('"""') % 2 == 1:
            in_doc = not in_doc
            continue
        if in_doc:
            continue
        m = re.match(r"^( *)class (\w+)", line)
        if m:
            stack = stack[: len(m.group(1)) // 4] + [m.group(2)]
            continue
        m = re.match(r"^( *)def (\w+)\((.*)\)\s*(?:->.*)?:", line)
        if m and stack and len(m.group(1)) // 4 == len(stack):
            sigs.setdefault((".".join(stack), m.group(2)), []).append(_param_names(m.group(3)))
    return sigs


def api114_signatures(path: Path) -> Signatures:
    sigs: Signatures = {}
    cur = None
    for line in path.read_text().splitlines():
        m = re.match(r"^class (\w+):", line)
        if m:
            cur = m.group(1)
            continue
        m = re.match(r"^  (\w+) \[instancemethod\]: \w+\((.*)\) ->", line)
        if m and cur:
            sigs.setdefault((cur, m.group(1)), []).append(_param_names(re.sub(r"=\s*<[^>]*>", "", m.group(2))))
    return sigs


def named_in(text: str, name: str) -> bool:
    """``name`` appears in ``text``, also inside shorthand like ``get_binding_name/index/shape/dtype``."""
    if name in text:
        return True
    stem, _, suffix = name.rpartition("_")
    return bool(re.search(rf"{re.escape(stem)}_[\w/]*/{re.escape(suffix)}\b", text))


# ------------------------------------------------------------------------------------------------ snapshot


def _sigs_out(sigs: Signatures) -> dict[str, list[list[str]]]:
    return {f"{cls}.{name}": v for (cls, name), v in sorted(sigs.items())}


def generate(stub_dir: Path, api114: Path, trt86_doc: Path | None) -> dict[str, Any]:
    from trt_emulator._levels import LEGACY_86_MEMBERS

    stubs, bases, module = parse_stubs(stub_dir)
    classes114, module114 = parse_api_114(api114)
    doc = trt86_doc.read_text() if trt86_doc is not None else ""
    legacy = sorted(f"{cls}.{n}" for cls, names in LEGACY_86_MEMBERS.items() for n in names if named_in(doc, n))
    return {
        "about": "TensorRT Python API names for the test double's conformance checks; see api_reference.py.",
        "stubs_10_13": {"classes": stubs, "bases": bases, "module": sorted(module),
                        "signatures": _sigs_out(stub_signatures(stub_dir))},  # fmt: skip
        "api_11_4": {"classes": classes114, "module": sorted(module114),
                     "signatures": _sigs_out(api114_signatures(api114))},  # fmt: skip
        "legacy_8_6_documented": legacy,
    }


def _sigs_in(raw: dict[str, list[list[str]]]) -> Signatures:
    out: Signatures = {}
    for key, value in raw.items():
        cls, _, name = key.rpartition(".")
        out[(cls, name)] = value
    return out


class Reference:
    """The snapshot, parsed."""

    def __init__(self, data: dict[str, Any]) -> None:
        s, a = data["stubs_10_13"], data["api_11_4"]
        self.stubs: Members = s["classes"]
        self.stub_bases: dict[str, list[str]] = s["bases"]
        self.stub_module: set[str] = set(s["module"])
        self.stub_signatures = _sigs_in(s["signatures"])
        self.api114: Members = a["classes"]
        self.module114: set[str] = set(a["module"])
        self.api114_signatures = _sigs_in(a["signatures"])
        self.legacy_86_documented: set[str] = set(data["legacy_8_6_documented"])

    def stub_members(self, name: str) -> dict[str, int | None]:
        out: dict[str, int | None] = {}
        for base in self.stub_bases.get(name, []):
            if base in self.stubs and base != name:
                out.update(self.stub_members(base))
        out.update(self.stubs.get(name, {}))
        return out


@lru_cache(maxsize=1)
def load() -> Reference:
    return Reference(json.loads(SNAPSHOT.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stubs", type=Path, required=True, help="folder holding tensorrt-stubs' tensorrt.pyi")
    parser.add_argument("--api114", type=Path, required=True, help="the TensorRT 11.4 API listing")
    parser.add_argument("--trt86-doc", type=Path, default=None, help="TensorRT 8.6 API notes naming legacy members")
    parser.add_argument("-o", "--out", type=Path, default=SNAPSHOT)
    args = parser.parse_args()
    data = generate(args.stubs, args.api114, args.trt86_doc)
    args.out.write_text(json.dumps(data, sort_keys=True, separators=(",", ":")) + "\n")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
