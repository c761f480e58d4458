"""Build options on the command line: every trtexec spelling plus trtbuild's own, recorded in order.

Order matters for trtexec's ``--profile=N`` grouping, so every option appends ``(trtexec name,
value)`` to ``args.trtexec_pairs`` and :meth:`BuildSpec.from_pairs` reads them the same way it reads
a pasted trtexec command line.
"""

from __future__ import annotations

import argparse
from typing import Any

from trtbuild.spec import OPTIONS, Opt

GROUP_TITLES = {
    "shapes": "shapes and optimization profiles",
    "precision": "precision",
    "build": "build options (trtexec names; kebab-case where trtbuild has its own)",
    "system": "system options",
    "inference": "inference options (used by bench; stored in the plan)",
    "reporting": "reporting options",
}
PRECISION_ATTRS = {"fp16", "bf16", "int8", "fp8", "int4", "best", "calib", "calib_profile", "precision_constraints",
                   "layer_precisions", "layer_output_types", "strongly_typed"}  # fmt: skip


class RecordPair(argparse.Action):
    def __init__(self, option_strings: list[str], dest: str, trtexec_name: str = "", **kwargs: Any) -> None:
        self.trtexec_name = trtexec_name
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: Any, namespace: Any, values: Any, option_string: str | None = None) -> None:
        pairs = getattr(namespace, "trtexec_pairs", None)
        if pairs is None:
            pairs = []
            namespace.trtexec_pairs = pairs
        value = values if isinstance(values, str) else None
        if self.trtexec_name == "workspace":  # trtbuild's own --workspace SIZE
            pairs.append(("memPoolSize", f"workspace:{value}"))
        else:
            pairs.append((self.trtexec_name, value))


def _group_of(opt: Opt) -> str:
    if opt.kind == "shape" or opt.name == "shapes":
        return "shapes"
    if opt.section == "build" and opt.attr in PRECISION_ATTRS:
        return "precision"
    return opt.section


def add_build_options(parser: argparse.ArgumentParser) -> None:
    groups = {key: parser.add_argument_group(title) for key, title in GROUP_TITLES.items()}
    parser.set_defaults(trtexec_pairs=[])
    for opt in OPTIONS:
        is_flag = opt.kind in ("flag", "neg_flag")
        versions = ",".join(f"{d}" for d in sorted(opt.dialects))
        suffix = "" if versions == "8,10,11" else f" [trtexec {versions}]"
        kwargs: dict[str, Any] = {"nargs": 0} if is_flag else {"metavar": _metavar(opt)}
        if opt.choices:
            kwargs["metavar"] = "{" + ",".join(dict.fromkeys(opt.choices.values())) + "}"
        groups[_group_of(opt)].add_argument(
            *opt.flags,
            action=RecordPair,
            trtexec_name=opt.name,
            dest=f"_opt_{opt.name}",
            help=(opt.help + suffix).replace("%", "%%"),
            default=argparse.SUPPRESS,
            **kwargs,
        )
    groups["build"].add_argument(
        "--workspace", action=RecordPair, trtexec_name="workspace", dest="_opt_workspace_ours", metavar="SIZE",
        default=argparse.SUPPRESS, help="Workspace limit, e.g. 4G (same as --memPoolSize=workspace:4G).",
    )
    groups["shapes"].add_argument(
        "--profiles", action="append", default=[], metavar="FILE|PRESET",
        help="Optimization profiles from a TOML file or a preset (yolo640, imagenet224, two_input); repeatable.",
    )


def _metavar(opt: Opt) -> str:
    return {"int": "N", "float": "X", "mempool": "POOL:SIZE", "list": "LIB", "shape": "SHAPES",
            "inference_shapes": "SHAPES"}.get(opt.kind, "VALUE")  # fmt: skip


def add_dialect_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trtexec-version", type=int, choices=(8, 10, 11), default=None,
        help="trtexec dialect for the printed command line and for validation: 8 (TensorRT 8.5/8.6), 10 or 11 "
        "(default: the installed TensorRT's, else 10). 11 has no --fp16/--int8/--calib: precision lives in the ONNX.",
    )
