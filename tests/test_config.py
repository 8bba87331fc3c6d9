"""SimConfig validation and serialisation; units."""
import dataclasses
import json
import math

import pytest

from turbsim import SimConfig, units

BAD_VALUES = {
    "box": [0.0, -1.0, float("nan"), float("inf"), "10", 10**400, -(10**400)],
    "density": [0.0, -1e-22, 2.0],
    "temperature": [0.0, -10.0, 1e12],
    "mu": [0.0, 101.0],
    "mach": [-0.1, 1000.0, float("nan")],
    "n": [-1.0, 11.0],
    "solenoidal": [-0.01, 1.01],
    "seed": [-1, 1.5, "0", True, 2**63, 10**400, float("inf")],
    "cells": [2, 5, 127, 8192, 64.5, True],
    "t_end": [-0.1, float("inf"), 10**400],
    "scheme": ["second", "", None],
    "limiter": ["superbee", None],
    "courant": [0.0, 1.2],
    "dtype": ["float16", "double"],
    "ic": ["gaussian"],
    "gamma": [0.9, 2.0],
    "ramses_dt": ["yes", 1],
    "stop": ["land", 1],
    "levelmin": [-1, 11, 1.5, 2],
    "levelmax": [-1, 11],
    "refine": ["everywhere", None],
    "err_grad_d": [-0.1, float("nan")],
    "m_refine": [-1.0],
    "nexpand": [-1, 5],
    "regrid_every": [0, 1.5],
    "regrid_schedule": ["ramses", None],
}


@pytest.mark.parametrize("field,value", [(f, v) for f, vs in BAD_VALUES.items() for v in vs])
def test_every_invalid_field_raises_value_error_naming_it(field, value):
    with pytest.raises(ValueError, match=rf"SimConfig\.{field}\b"):
        SimConfig(**{field: value})


def test_every_field_is_checked():
    assert set(BAD_VALUES) == {f.name for f in dataclasses.fields(SimConfig)}


def test_defaults_match_the_study():
    c = SimConfig()
    assert (c.box, c.density, c.temperature, c.mu, c.mach) == (10.0, 6.77e-22, 10.0, 2.37, 1.41)
    assert c.n == pytest.approx(11 / 3) and c.solenoidal == 1.0
    assert (c.cells, c.t_end, c.scheme, c.limiter, c.courant) == (128, 0.5, "muscl", "minmod", 0.8)


def test_round_trip_dict_and_json():
    c = SimConfig(n=4.0, seed=7, cells=64, scheme="first", dtype="float32")
    assert SimConfig.from_dict(c.to_dict()) == c
    assert SimConfig.from_json(c.to_json()) == c
    assert json.loads(c.to_json())["n"] == 4.0


def test_unknown_keys_and_bad_json_are_rejected():
    with pytest.raises(ValueError, match="no field"):
        SimConfig.from_dict({"cells": 64, "resolution": 3})
    with pytest.raises(ValueError, match="JSON"):
        SimConfig.from_json("{cells: 64")


def test_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        SimConfig().cells = 64


def test_a_huge_integer_is_a_value_error_naming_the_field_not_an_overflow():
    with pytest.raises(ValueError, match=r"SimConfig\.box = 10\*\*400 is outside the allowed range \(0, 1e\+06\]"):
        SimConfig(box=10**400)


def test_field_docs_give_every_field_a_help_sentence_with_units():
    from turbsim.config import field_docs

    docs = field_docs(SimConfig)
    assert set(docs) == {f.name for f in dataclasses.fields(SimConfig)}
    assert all(docs.values())
    assert "[pc]" in docs["box"] and "[Myr]" in docs["t_end"] and "[K]" in docs["temperature"]
    assert "[0, 1]" in docs["solenoidal"] and "even, in [4, 4096]" in docs["cells"]
    assert "``" not in "".join(docs.values())


def test_sound_speed_and_code_units():
    # the shared RAMSES runs: T = 10 K, mu = 2.37 -> cs = 18730.22 cm/s
    assert units.sound_speed(10.0, 2.37) == pytest.approx(18730.22, rel=1e-6)
    # RAMSES's default mu_gas = 1 is sqrt(2.37) times faster
    assert units.sound_speed(10.0, 1.0) / units.sound_speed(10.0, 2.37) == pytest.approx(math.sqrt(2.37))
    cu = SimConfig().code_units
    assert cu["mass"] / units.MSUN == pytest.approx(1e4, rel=1e-3)   # 1e4 Msun in the box
    assert SimConfig().t_end_code == pytest.approx(0.5 * units.MYR / cu["time"])
    with pytest.raises(ValueError):
        units.sound_speed(-1.0)
