"""Shape grammar, trtexec fill rules, profiles and validation against a model's inputs."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trtbuild.errors import ShapeError
from trtbuild.shapes import (
    Profile,
    ShapeRange,
    TensorInfo,
    format_dims,
    format_shape_list,
    load_profiles_file,
    parse_dims,
    parse_shape_list,
    preset_names,
    profile_from_flags,
    profiles_from_events,
    resolve_profile,
    resolve_profiles,
    split_name_and_value,
)

dims_st = st.lists(st.integers(min_value=0, max_value=4096), min_size=0, max_size=6).map(tuple)
# Names may hold ':', '/', '.', 'x' and digits; never ',' or "'" (trtexec's grammar cannot express those).
name_st = st.text(
    alphabet=st.characters(blacklist_characters=",'", blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20
)


@given(dims_st)
def test_dims_round_trip(dims: tuple[int, ...]) -> None:
    assert parse_dims(format_dims(dims)) == dims


@given(st.dictionaries(name_st, dims_st, min_size=1, max_size=4))
def test_shape_list_round_trip(shapes: dict[str, tuple[int, ...]]) -> None:
    assert parse_shape_list(format_shape_list(shapes)) == shapes


@pytest.mark.parametrize(
    ("pair", "name", "value"),
    [
        ("images:1x3x640x640", "images", "1x3x640x640"),
        ("Input:0:1x3x224x224", "Input:0", "1x3x224x224"),
        ("'Input:0':1x3x224x224", "Input:0", "1x3x224x224"),
        ("'data':C:\\x.bin", "data", "C:\\x.bin"),
        ("model/input.1:1x3", "model/input.1", "1x3"),
        ("1x3x640x640", "", "1x3x640x640"),
        ("t:scalar", "t", "scalar"),
    ],
)
def test_split_name_and_value_follows_trtexec(pair: str, name: str, value: str) -> None:
    assert split_name_and_value(pair) == (name, value)


def test_scalar_and_empty_are_zero_d() -> None:
    assert parse_dims("scalar") == ()
    assert parse_dims("") == ()
    assert parse_shape_list("a:scalar,b:") == {"a": (), "b": ()}


@pytest.mark.parametrize("bad", ["1x3xa", "1x-3", "1.5x3", "1xx3"])
def test_bad_dims_name_the_problem(bad: str) -> None:
    with pytest.raises(ShapeError, match="non-negative whole numbers"):
        parse_dims(bad)


def test_bad_quotes_rejected() -> None:
    with pytest.raises(ShapeError, match="invalid number of '"):
        parse_shape_list("'a:1x3")


def test_duplicate_and_mixed_names_rejected() -> None:
    with pytest.raises(ShapeError, match="twice"):
        parse_shape_list("a:1x3,a:1x4")
    with pytest.raises(ShapeError, match="mixes named and unnamed"):
        parse_shape_list("a:1x3,1x4")


# trtexec.md §9.3 fill rules
@pytest.mark.parametrize(
    ("given_flags", "expected"),
    [
        ({"opt": "2"}, ((2,), (2,), (2,))),
        ({"min": "1"}, ((1,), (1,), (1,))),
        ({"max": "4"}, ((4,), (4,), (4,))),
        ({"min": "1", "opt": "2"}, ((1,), (2,), (2,))),
        ({"opt": "2", "max": "4"}, ((2,), (2,), (4,))),
        ({"min": "1", "max": "4"}, ((1,), (4,), (4,))),
        ({"min": "1", "opt": "2", "max": "4"}, ((1,), (2,), (4,))),
    ],
)
def test_fill_rules(given_flags: dict[str, str], expected: tuple[tuple[int, ...], ...]) -> None:
    profile = profile_from_flags(**{k: f"x:{v}" for k, v in given_flags.items()})
    assert profile.shapes["x"] == ShapeRange(*expected)


def test_shapes_alone_builds_exactly_that_shape() -> None:
    profile = profile_from_flags(shapes="input:8x3x224x224")
    assert profile.shapes["input"] == ShapeRange.fixed((8, 3, 224, 224))


def test_tensor_missing_from_one_flag_is_an_error() -> None:
    with pytest.raises(ShapeError, match="not in --max"):
        profile_from_flags(min="a:1x3,b:1x4", max="a:2x3")


def test_repeated_flags_make_several_profiles() -> None:
    profiles = profiles_from_events([("min", "x:1"), ("max", "x:4"), ("min", "x:8"), ("max", "x:16")])
    assert [p.shapes["x"] for p in profiles] == [ShapeRange((1,), (4,), (4,)), ShapeRange((8,), (16,), (16,))]


def test_profile_markers_follow_trtexec() -> None:
    events = [("profile", "0"), ("min", "x:1"), ("max", "x:2"), ("profile", "1"), ("opt", "x:8")]
    profiles = profiles_from_events(events)
    assert profiles[0].shapes["x"] == ShapeRange((1,), (2,), (2,))
    assert profiles[1].shapes["x"] == ShapeRange.fixed((8,))


def test_profile_gap_is_an_error() -> None:
    with pytest.raises(ShapeError, match="missing shape spec at profile index 1"):
        profiles_from_events([("profile", "0"), ("opt", "x:1"), ("profile", "2"), ("opt", "x:2")])


def test_shape_flag_not_after_marker_is_an_error() -> None:
    with pytest.raises(ShapeError, match="directly follow --profile"):
        profiles_from_events([("profile", "0"), ("min", "x:1"), ("opt", "x:1"), ("max", "x:1"), ("max", "x:2")])


IMAGES = TensorInfo("images", "float32", ("batch", 3, "height", "width"))
SCALE = TensorInfo("scale", "float32", ("batch", 1))


def test_unnamed_shape_resolves_to_the_only_input() -> None:
    profile = resolve_profile(profile_from_flags(min="1x3x640x640", max="16x3x640x640"), [IMAGES])
    assert profile.flag_values() == {
        "min": "images:1x3x640x640",
        "opt": "images:16x3x640x640",
        "max": "images:16x3x640x640",
    }


def test_wrong_rank_names_input_and_dims() -> None:
    with pytest.raises(ShapeError) as err:
        resolve_profile(profile_from_flags(min="1x3x640", max="1x3x640"), [IMAGES])
    message = str(err.value)
    assert "images [batch, 3, height, width]" in message and "4 dimensions" in message


def test_min_greater_than_max_is_an_error() -> None:
    with pytest.raises(ShapeError, match="min <= opt <= max"):
        resolve_profile(profile_from_flags(min="32x3x64x64", max="16x3x64x64"), [IMAGES])


def test_static_dim_contradiction_is_an_error() -> None:
    with pytest.raises(ShapeError, match="axis 1 is fixed to 3"):
        resolve_profile(profile_from_flags(shapes="1x4x64x64"), [IMAGES])


def test_unknown_input_lists_the_real_ones() -> None:
    with pytest.raises(ShapeError, match="no input named 'imgs'.*images \\[batch"):
        resolve_profile(profile_from_flags(shapes="imgs:1x3x64x64"), [IMAGES])


def test_dynamic_input_without_shape_is_an_error() -> None:
    with pytest.raises(ShapeError, match="scale \\[batch, 1\\].*no shape"):
        resolve_profile(profile_from_flags(shapes="images:1x3x64x64"), [IMAGES, SCALE])


def test_unnamed_shape_with_two_dynamic_inputs_is_an_error() -> None:
    with pytest.raises(ShapeError, match="name each one"):
        resolve_profile(profile_from_flags(shapes="1x3x64x64"), [IMAGES, SCALE])


def test_wildcard_names_match_one_input() -> None:
    profile = resolve_profile(profile_from_flags(shapes="ima*:1x3x64x64,scale:1x1"), [IMAGES, SCALE])
    assert list(profile.shapes) == ["images", "scale"]


def test_no_profile_for_dynamic_model_is_an_error() -> None:
    with pytest.raises(ShapeError, match="no shape"):
        resolve_profiles([], [IMAGES])
    assert resolve_profiles([], [TensorInfo("x", "float32", (1, 3))]) == []


def test_presets_load_and_fit_their_models() -> None:
    assert {"yolo640", "imagenet224", "two_input"} <= set(preset_names())
    yolo = load_profiles_file("yolo640")
    assert yolo[0].shapes["images"] == ShapeRange((1, 3, 640, 640), (8, 3, 640, 640), (16, 3, 640, 640))
    two = resolve_profiles(load_profiles_file("two_input"), [TensorInfo("image", "float32", ("b", 3, "h", "w")), SCALE])
    assert list(two[0].shapes) == ["image", "scale"]
    assert len(load_profiles_file("imagenet224")) == 2


def test_profile_file_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ShapeError, match="No profile file or preset"):
        load_profiles_file("nope")
    bad = tmp_path / "p.toml"
    bad.write_text("[[profile]]\nx = { min = '1x3', low = '1x3' }\n")
    with pytest.raises(ShapeError, match="unknown keys"):
        load_profiles_file(str(bad))
    empty = tmp_path / "e.toml"
    empty.write_text("title = 'x'\n")
    with pytest.raises(ShapeError, match="no \\[\\[profile\\]\\] tables"):
        load_profiles_file(str(empty))


def test_profile_dict_round_trip() -> None:
    profile = Profile({"a": ShapeRange((1, 2), (2, 2), (4, 2))})
    assert Profile.from_dict(profile.as_dict()) == profile
