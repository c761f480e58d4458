"""Shape specs and optimization profiles, with trtexec's grammar and fill rules.

Grammar (trtexec, sampleOptions.cpp): a spec is ``pair[,pair...]``; a pair is ``name:dims`` where the
value is what follows the *last* colon (so ``Input:0:1x3`` names ``Input:0``), or ``'name':dims``
with the name quoted. ``dims`` is ``AxBxC``, ``scalar`` or empty (a 0-d shape). trtbuild also takes a
bare ``1x3x640x640`` for a model with one input to shape.
"""

from __future__ import annotations

import fnmatch
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from trtbuild.errors import ShapeError

log = logging.getLogger(__name__)

Dims = tuple[int, ...]
#: A model's declared dimension: a fixed size, a symbolic name ("batch"), or None (unknown).
ModelDim = int | str | None

UNNAMED = ""
SHAPE_FLAGS = ("min", "opt", "max")
#: The largest dimension accepted: TensorRT 8's dims are int32, and no real tensor comes close to it.
MAX_DIM = (1 << 31) - 1


def parse_dims(text: str, *, context: str = "") -> Dims:
    """``"1x3x640x640"`` -> ``(1, 3, 640, 640)``; ``"scalar"`` or ``""`` -> ``()``."""
    value = text.strip()
    if value in ("", "scalar"):
        return ()
    parts = value.lower().split("x")
    dims: list[int] = []
    where = f" in {context}" if context else ""
    for part in parts:
        part = part.strip()
        # isdigit() alone takes '²' and other Unicode digits, which int() then refuses.
        if not (part.isascii() and part.isdigit()):
            raise ShapeError(
                f"Cannot read the shape '{_clip(text)}'{where}: dimensions must be non-negative whole numbers "
                "joined by 'x', like 1x3x640x640 (or 'scalar' for a 0-d tensor)."
            )
        dims.append(_checked_dim(int(part) if len(part) <= 12 else MAX_DIM + 1, text, where))
    return tuple(dims)


def _checked_dim(value: int, text: object, where: str) -> int:
    if value > MAX_DIM:
        raise ShapeError(
            f"The shape '{_clip(str(text))}'{where} has a dimension above {MAX_DIM} (2^31-1), more than TensorRT "
            "can address; check the shape."
        )
    return value


def _clip(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def format_dims(dims: Sequence[int]) -> str:
    return "x".join(str(int(d)) for d in dims) if len(dims) else "scalar"


def split_name_and_value(pair: str) -> tuple[str, str]:
    """Split one ``name:value`` pair the way trtexec does (quotes, then the last colon)."""
    if "'" in pair:
        pieces = pair.split("'")
        if len(pieces) != 3:
            raise ShapeError(f"Found an invalid number of ' in '{pair}': quote the whole name, like 'Input:0':1x3x224x224.")
        name = pieces[0] + pieces[1]
        value = pieces[2]
        if not value.startswith(":"):
            raise ShapeError(f"Expected ':' after the quoted name in '{pair}', like 'Input:0':1x3x224x224.")
        return name, value[1:]
    if ":" not in pair:
        return UNNAMED, pair
    name, _, value = pair.rpartition(":")
    return name.replace("'", ""), value


def parse_shape_list(spec: str, *, flag: str = "shape") -> dict[str, Dims]:
    """Parse ``a:1x3,b:2x4`` (or an unnamed ``1x3x640x640``) into an ordered name -> dims map."""
    if spec is None or spec.strip() == "":
        raise ShapeError(f"--{flag} needs a value like images:1x3x640x640 (or 1x3x640x640 for a single-input model).")
    shapes: dict[str, Dims] = {}
    for pair in spec.split(","):
        name, value = split_name_and_value(pair)
        if name in shapes:
            label = f"input '{name}'" if name else "the unnamed input"
            raise ShapeError(f"--{flag} gives {label} twice in '{spec}'; give each input once.")
        shapes[name] = parse_dims(value, context=f"--{flag} {_clip(spec)}")
    if UNNAMED in shapes and len(shapes) > 1:
        raise ShapeError(f"--{flag} '{spec}' mixes named and unnamed shapes; name every input, like a:1x3,b:1x4.")
    return shapes


def _quote_name(name: str) -> str:
    # Names with a comma cannot be written in trtexec's grammar at all; a quote needs the quoted form.
    if "," in name:
        raise ShapeError(f"The input name '{name}' contains a comma, which trtexec's shape syntax cannot express.")
    return name


def format_shape_list(shapes: Mapping[str, Sequence[int]]) -> str:
    """Inverse of :func:`parse_shape_list`."""
    parts = []
    for name, dims in shapes.items():
        parts.append(f"{_quote_name(name)}:{format_dims(dims)}" if name else format_dims(dims))
    return ",".join(parts)


@dataclass(frozen=True)
class ShapeRange:
    """min/opt/max dims of one input in one optimization profile."""

    min: Dims
    opt: Dims
    max: Dims

    @classmethod
    def fixed(cls, dims: Dims) -> ShapeRange:
        return cls(dims, dims, dims)

    def as_dict(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}


@dataclass
class Profile:
    """One optimization profile: input name -> ShapeRange, in the order given."""

    shapes: dict[str, ShapeRange] = field(default_factory=dict)

    def flag_values(self) -> dict[str, str]:
        """The ``--minShapes``/``--optShapes``/``--maxShapes`` values of this profile."""
        return {
            which: format_shape_list({n: getattr(r, which) for n, r in self.shapes.items()}) for which in SHAPE_FLAGS
        }

    def as_dict(self) -> dict[str, dict[str, list[int]]]:
        return {name: rng.as_dict() for name, rng in self.shapes.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "profile") -> Profile:
        shapes: dict[str, ShapeRange] = {}
        if not isinstance(data, Mapping):
            raise ShapeError(f"{source} must be a table of input name -> shape, not {_clip(repr(data))}.")
        for name, entry in data.items():
            if isinstance(entry, str):
                dims = parse_dims(entry, context=f"{source} input '{name}'")
                shapes[name] = ShapeRange.fixed(dims)
                continue
            if not isinstance(entry, Mapping):
                raise ShapeError(
                    f"In {source}, input '{name}' must be a shape string or a table with min/opt/max, not {_clip(repr(entry))}."
                )
            given = {k: _dims_of(entry[k], f"{source} input '{name}' {k}") for k in SHAPE_FLAGS if k in entry}
            unknown = set(entry) - set(SHAPE_FLAGS)
            if unknown:
                raise ShapeError(f"In {source}, input '{name}' has unknown keys {sorted(unknown)}; use min, opt and max.")
            shapes[name] = _fill_one(name, given)
        return cls(shapes)


def dims_of(value: Any, context: str) -> Dims:
    """A shape given as ``"1x3x640x640"`` or ``[1, 3, 640, 640]`` (TOML, JSON), checked as the CLI checks it."""
    return _dims_of(value, context)


def _dims_of(value: Any, context: str) -> Dims:
    if isinstance(value, str):
        return parse_dims(value, context=context)
    if isinstance(value, Sequence) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        if any(v < 0 for v in value):
            raise ShapeError(f"{context}: {list(value)} has a negative dimension; dimensions are sizes, 0 or more.")
        return tuple(_checked_dim(int(v), list(value), f" in {context}") for v in value)
    raise ShapeError(f"{context}: expected a shape like \"1x3x640x640\" or [1, 3, 640, 640], not {_clip(repr(value))}.")


def _fill_one(name: str, given: Mapping[str, Dims]) -> ShapeRange:
    """trtexec's fill rule for one tensor (sampleOptions.cpp / sampleInference.cpp: the input-fill rules)."""
    lo, opt, hi = given.get("min"), given.get("opt"), given.get("max")
    label = f"'{name}'" if name else "the input"
    if opt is None:
        if lo is not None and hi is not None:
            opt = hi
            log.debug("No --opt for %s: using its --max %s (trtexec's rule).", label, format_dims(hi))
        else:
            opt = lo if lo is not None else hi
    if opt is None:
        raise ShapeError(f"No shape given for {label}; pass at least one of --min/--opt/--max.")
    if lo is None:
        lo = opt
    if hi is None:
        hi = opt
    return ShapeRange(lo, opt, hi)


def profile_from_flags(
    min: str | None = None,
    opt: str | None = None,
    max: str | None = None,
    shapes: str | None = None,
) -> Profile:
    """Build one profile from ``--min/--opt/--max`` (or ``--shapes``) values with trtexec's fill rules.

    ``--shapes`` alone fixes min = opt = max (trtexec builds exactly that shape). With min/opt/max
    present, ``--shapes`` only adds tensors the profile lacks, again fixed.
    """
    per_flag = {
        which: parse_shape_list(value, flag=which)
        for which, value in (("min", min), ("opt", opt), ("max", max))
        if value is not None
    }
    names: list[str] = []
    for mapping in per_flag.values():
        names += [n for n in mapping if n not in names]
    profile = Profile()
    for name in names:
        missing = [w for w in per_flag if name not in per_flag[w]]
        if missing:
            label = f"'{name}'" if name else "the unnamed input"
            raise ShapeError(
                f"Input {label} appears in some of --min/--opt/--max but not in --{missing[0]}; "
                "a tensor must appear in every shape flag that is given."
            )
        profile.shapes[name] = _fill_one(name, {w: per_flag[w][name] for w in per_flag})
    if shapes is not None:
        for name, dims in parse_shape_list(shapes, flag="shapes").items():
            profile.shapes.setdefault(name, ShapeRange.fixed(dims))
    return profile


# --------------------------------------------------------------------------------------------------
# Validation against the model


@dataclass(frozen=True)
class TensorInfo:
    """A model input or output as declared: name, numpy dtype name, dims (with symbolic names)."""

    name: str
    dtype: str
    dims: tuple[ModelDim, ...]

    @property
    def is_dynamic(self) -> bool:
        return any(not isinstance(d, int) or d < 0 for d in self.dims)

    def describe(self) -> str:
        shown = ", ".join("?" if d is None else str(d) for d in self.dims)
        return f"{self.name} [{shown}] {self.dtype}"

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "dtype": self.dtype, "dims": list(self.dims)}


def _inputs_line(inputs: Sequence[TensorInfo]) -> str:
    return "; ".join(t.describe() for t in inputs) or "(none)"


def _match_input(name: str, inputs: Sequence[TensorInfo]) -> TensorInfo | None:
    """Exact name first, then trtexec's one-``*`` wildcard."""
    for tensor in inputs:
        if tensor.name == name:
            return tensor
    if name.count("*") == 1:
        for tensor in inputs:
            if fnmatch.fnmatchcase(tensor.name, name.replace("[", "[[]")):
                return tensor
    return None


def input_named(name: str, inputs: Sequence[TensorInfo], *, naming_hint: str) -> str:
    """The model input a given shape belongs to: ``name`` itself, or for an unnamed shape the only
    dynamic input. ``naming_hint`` shows how to name shapes where this one came from."""
    names = [t.name for t in inputs]
    if name == UNNAMED:
        dynamic = [t.name for t in inputs if t.is_dynamic] or names
        if len(dynamic) != 1:
            raise ShapeError(
                f"An unnamed shape fits a model with one input; this one has {', '.join(names)}: name each, "
                f"like {naming_hint}."
            )
        return dynamic[0]
    if names and name not in names:
        raise ShapeError(f"The model has no input named '{name}'; its inputs are {_inputs_line(inputs)}.")
    return name


def fixed_axis_conflict(tensor: TensorInfo, dims: Sequence[int]) -> tuple[int, int] | None:
    """The first ``(axis, declared size)`` where ``dims`` contradicts a fixed dim of ``tensor`` (same rank assumed)."""
    for axis, (declared, got) in enumerate(zip(tensor.dims, dims)):
        if isinstance(declared, int) and declared >= 0 and declared != got:
            return axis, declared
    return None


def _check_dims(tensor: TensorInfo, which: str, dims: Dims, where: str) -> None:
    fix = f"give {len(tensor.dims)} dimensions, like {_example(tensor)}"
    if len(dims) != len(tensor.dims):
        raise ShapeError(
            f"{where}: --{which} for '{tensor.name}' is {format_dims(dims)} ({len(dims)} dimensions), "
            f"but the model declares {tensor.describe()} ({len(tensor.dims)} dimensions); {fix}."
        )
    conflict = fixed_axis_conflict(tensor, dims)
    if conflict is not None:
        axis, declared = conflict
        raise ShapeError(
            f"{where}: --{which} for '{tensor.name}' is {format_dims(dims)}, but axis {axis} is fixed to "
            f"{declared} in the model ({tensor.describe()}); keep it at {declared}."
        )


def _example(tensor: TensorInfo) -> str:
    return "x".join(str(d) if isinstance(d, int) and d >= 0 else "1" for d in tensor.dims) or "scalar"


def resolve_profile(profile: Profile, inputs: Sequence[TensorInfo], *, index: int = 0, count: int = 1) -> Profile:
    """Check a profile against the model's inputs; return it keyed by the model's input names.

    Every message names the input, its declared dims (with symbolic names) and the fix.
    """
    where = f"Profile {index}" if count > 1 else "Shape profile"
    resolved: dict[str, ShapeRange] = {}
    for name, rng in profile.shapes.items():
        if name == UNNAMED:
            candidates = [t for t in inputs if t.is_dynamic] or list(inputs)
            if len(candidates) != 1:
                raise ShapeError(
                    f"{where}: an unnamed shape fits a model with one input, but this model has "
                    f"{len(inputs)} ({_inputs_line(inputs)}); name each one, like "
                    f"--min {inputs[0].name}:{_example(inputs[0])}." if inputs else f"{where}: the model has no inputs."
                )
            tensor = candidates[0]
        else:
            found = _match_input(name, inputs)
            if found is None:
                raise ShapeError(
                    f"{where}: the model has no input named '{name}'; its inputs are {_inputs_line(inputs)}."
                )
            tensor = found
        if tensor.name in resolved:
            raise ShapeError(f"{where}: input '{tensor.name}' is given twice (by '{name}' and an earlier entry).")
        for which in SHAPE_FLAGS:
            _check_dims(tensor, which, getattr(rng, which), where)
        for axis, (lo, opt, hi) in enumerate(zip(rng.min, rng.opt, rng.max)):
            if not lo <= opt <= hi:
                raise ShapeError(
                    f"{where}: for '{tensor.name}' ({tensor.describe()}) axis {axis} needs min <= opt <= max, "
                    f"but got min {format_dims(rng.min)}, opt {format_dims(rng.opt)}, max {format_dims(rng.max)}; "
                    "swap or correct the shapes."
                )
        resolved[tensor.name] = rng
    for tensor in inputs:
        if tensor.is_dynamic and tensor.name not in resolved:
            raise ShapeError(
                f"{where}: input {tensor.describe()} has dynamic dimensions but no shape; add it, like "
                f"--min {tensor.name}:{_example(tensor)} --max {tensor.name}:{_example(tensor)} "
                "(comma-separate several inputs)."
            )
    # Keep the model's input order so profiles print the same whatever order the user typed.
    return Profile({t.name: resolved[t.name] for t in inputs if t.name in resolved})


def resolve_profiles(profiles: Sequence[Profile], inputs: Sequence[TensorInfo]) -> list[Profile]:
    if not profiles:
        dynamic = [t for t in inputs if t.is_dynamic]
        if dynamic:
            return [resolve_profile(Profile(), inputs)]  # raises with the missing input named
        return []
    return [resolve_profile(p, inputs, index=i, count=len(profiles)) for i, p in enumerate(profiles)]


# --------------------------------------------------------------------------------------------------
# Profiles from TOML files (presets ship in trtbuild/profiles/)

PRESET_DIR = Path(__file__).with_name("profiles")


def preset_names() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.toml"))


def load_profiles_file(path_or_preset: str) -> list[Profile]:
    """Read ``[[profile]]`` tables from a TOML file or a preset name (see ``trtbuild/profiles/``)."""
    path = Path(path_or_preset)
    if not path.exists():
        preset = PRESET_DIR / f"{path_or_preset}.toml"
        if not preset.exists():
            raise ShapeError(
                f"No profile file or preset named '{path_or_preset}'; give a TOML path or one of: "
                f"{', '.join(preset_names())}."
            )
        path = preset
    from trtbuild._toml import load_toml

    data = load_toml(path)
    tables = data.get("profile")
    if not isinstance(tables, list) or not tables:
        raise ShapeError(f"{path} has no [[profile]] tables; see trtbuild/profiles/yolo640.toml for the format.")
    return [Profile.from_dict(t, source=f"{path} profile {i}") for i, t in enumerate(tables)]


def profiles_from_events(events: Iterable[tuple[str, str]]) -> list[Profile]:
    """Group shape flags into profiles the way trtexec does.

    ``events`` are ``(flag, value)`` in command-line order, flag one of min/opt/max/shapes/profile.
    With ``--profile=N`` markers, only the shape flags right after a marker belong to profile N. Without
    them, the i-th ``--min`` (``--opt``, ``--max``) belongs to profile i.
    """
    events = list(events)
    if any(flag == "profile" for flag, _ in events):
        return _profiles_with_markers(events)
    per_flag: dict[str, list[str]] = {w: [] for w in (*SHAPE_FLAGS, "shapes")}
    for flag, value in events:
        per_flag[flag].append(value)
    count = max((len(v) for k, v in per_flag.items() if k != "shapes"), default=0)
    if len(per_flag["shapes"]) > 1:
        raise ShapeError("--shapes was given more than once; put all inputs in one comma-separated list.")
    shapes = per_flag["shapes"][0] if per_flag["shapes"] else None
    if count == 0:
        return [profile_from_flags(shapes=shapes)] if shapes is not None else []
    for which in SHAPE_FLAGS:
        if per_flag[which] and len(per_flag[which]) != count:
            raise ShapeError(
                f"--{which} was given {_times(len(per_flag[which]))} but another shape flag {_times(count)}; "
                "with several profiles give each of --min/--opt/--max once per profile (or use --profile N)."
            )
    return [
        profile_from_flags(
            **{w: (per_flag[w][i] if per_flag[w] else None) for w in SHAPE_FLAGS},
            shapes=shapes if i == 0 else None,
        )
        for i in range(count)
    ]


def _times(n: int) -> str:
    return "once" if n == 1 else f"{n} times"


def _profiles_with_markers(events: list[tuple[str, str]]) -> list[Profile]:
    by_index: dict[int, dict[str, str]] = {}
    current: int | None = None
    taken = 0
    shapes: str | None = None
    for flag, value in events:
        if flag == "profile":
            try:
                current = int(value)
            except ValueError:
                raise ShapeError(f"--profile needs a whole number, not '{value}'.") from None
            if current in by_index:
                raise ShapeError(f"--profile={current} is given twice; profile indices must be unique.")
            by_index[current] = {}
            taken = 0
        elif flag == "shapes":
            shapes = value
        elif current is None or taken >= 3:
            raise ShapeError(
                f"--{flag} must directly follow --profile=N (up to three of --min/--opt/--max per profile)."
            )
        else:
            if flag in by_index[current]:
                raise ShapeError(f"--{flag} is given twice for profile {current}.")
            by_index[current][flag] = value
            taken += 1
    if sorted(by_index) != list(range(len(by_index))):
        missing = next(i for i in range(len(by_index) + 1) if i not in by_index)
        raise ShapeError(f"Found invalid or missing shape spec at profile index {missing}; number profiles 0, 1, 2, ...")
    return [
        profile_from_flags(**by_index[i], shapes=shapes if i == 0 else None)  # type: ignore[arg-type]
        for i in range(len(by_index))
    ]
