"""Print a BuildPlan for humans (rich) or machines (--json)."""

from __future__ import annotations

import json
from typing import Any

from trtbuild.plan import BuildPlan
from trtbuild.shapes import format_dims


def print_plan(plan: BuildPlan, *, as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(plan.to_dict(), indent=2, default=str))
        return
    from rich.markup import escape
    from rich.table import Table

    from trtbuild.console import get_console

    console = get_console()
    model = plan.model
    console.print(f"[bold]Model[/bold]   {escape(model.path)} (opset {model.opset}, {model.node_count} nodes)")
    for tensor in model.inputs:
        console.print(f"  input   {escape(tensor.describe())}")
    for tensor in model.outputs:
        console.print(f"  output  {escape(tensor.describe())}")
    profiles = plan.spec.build.profiles
    if profiles:
        table = Table(title="Optimization profiles", title_justify="left")
        for column in ("profile", "input", "min", "opt", "max"):
            table.add_column(column)
        for index, profile in enumerate(profiles):
            for name, rng in profile.shapes.items():
                table.add_row(str(index), name, format_dims(rng.min), format_dims(rng.opt), format_dims(rng.max))
        console.print(table)
    else:
        console.print("Profiles: none needed (every input is static)")
    trt = plan.tensorrt_version or "not installed"
    console.print(f"[bold]TensorRT[/bold] {trt}; plan written for TensorRT {plan.target_major}.x")
    console.print(f"  precision path: {plan.precision_path}")
    for step in plan.precision_steps:
        console.print(f"  precision: {escape(step)}")
    console.print("  builder flags: " + (", ".join(plan.builder_flags) or "none")
                  + (f" (cleared: {', '.join(plan.cleared_builder_flags)})" if plan.cleared_builder_flags else ""))
    console.print("  network flags: " + (", ".join(plan.network_flags) or "none"))
    if plan.calibrator is not None:
        cal = plan.calibrator
        data = cal.data.get("source") or "random" if cal.data else "none (cache only)"
        console.print(f"  calibrator: {cal.kind}, data {escape(str(data))}, {cal.profile}, cache {escape(str(cal.cache))}")
    for kind, libraries in plan.plugins.items():
        console.print(f"  plugins ({kind}): " + escape(", ".join(libraries)))
    options = plan.spec.non_defaults()
    options.get("build", {}).pop("save_engine", None)
    for section, values in options.items():
        if values:
            console.print(f"  {section}: " + escape(", ".join(f"{k}={_short(v)}" for k, v in values.items())))
    console.print(f"[bold]Engine[/bold]  {plan.engine_path} (+ {plan.manifest_path})")
    for kind, path in plan.outputs.items():
        if kind not in ("engine", "manifest"):
            console.print(f"  writes {kind}: {escape(path)}")
    for warning in plan.warnings:
        console.print(f"[yellow]warning:[/yellow] {escape(warning)}")
    if plan.trtexec is not None:
        console.print(f"[bold]trtexec {plan.trtexec.dialect}.x equivalent[/bold]")
        print(str(plan.trtexec))
        for note in plan.trtexec.notes:
            console.print(f"  note: {escape(note)}")


def _short(value: Any) -> str:
    if isinstance(value, dict):
        return ",".join(f"{k}:{v}" for k, v in value.items())
    return str(value)
