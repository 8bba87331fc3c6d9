"""learn.config: TrainConfig's validation (shared validators), round trips, schedule, optimiser, model."""
import dataclasses

import numpy as np
import pytest

pytest.importorskip("flax")

from learn import config  # noqa: E402
from learn.config import TrainConfig  # noqa: E402


def test_circular_padding_needs_whole_maps():
    with pytest.raises(ValueError, match="circular.*whole"):
        TrainConfig(data="x.h5", padding="circular", augment=("flip", "quadrant"))
    cfg = TrainConfig(data="x.h5", padding="circular", augment=("flip", "rot90"), model="pyramid")
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_pyramid_skip_needs_the_pyramid():
    with pytest.raises(ValueError, match="pyramid_skip needs model='pyramid'"):
        TrainConfig(data="x.h5", model="resnet", pyramid_skip=True)
    cfg = TrainConfig(data="x.h5", model="pyramid", pyramid_skip=True)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="pyramid_skip needs pyramid_hidden > 0"):
        TrainConfig(data="x.h5", model="pyramid", pyramid_hidden=0, pyramid_skip=True)
    with pytest.raises(ValueError, match="pyramid_hidden = -3"):
        TrainConfig(data="x.h5", model="pyramid", pyramid_hidden=-3)
    cfg = TrainConfig(data="x.h5", model="pyramid", pyramid_hidden=0)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_refit_readout_needs_a_pyramid_and_a_fixed_split():
    with pytest.raises(ValueError, match="refit_readout needs model='pyramid'"):
        TrainConfig(data="x.h5", model="study_cnn", refit_readout=True)
    with pytest.raises(ValueError, match="refit_readout needs a fixed training split"):
        TrainConfig(model="pyramid", refit_readout=True, live=True)


@pytest.mark.parametrize("changes, message", [
    ({"learning_rate": 0}, r"TrainConfig.learning_rate = 0 is outside the allowed range \(0, inf\)"),
    ({"epochs": True}, "TrainConfig.epochs must be an integer, got True"),
    ({"epochs": 2.5}, "TrainConfig.epochs must be an integer, got 2.5"),
    ({"batch_size": 0}, r"TrainConfig.batch_size = 0 is outside the allowed range \[1, inf\]"),
    ({"dropout": 1.0}, r"TrainConfig.dropout = 1.0 is outside the allowed range \[0, 1\)"),
    ({"weight_decay": float("nan")}, "TrainConfig.weight_decay = nan"),
    ({"model": "vgg"}, "TrainConfig.model = 'vgg' is not one of 'study_cnn', 'resnet', 'pyramid'"),
    ({"uncertainty": 1}, "TrainConfig.uncertainty must be True or False, got 1"),
    ({"augment": ("flip", "shear")}, r"unknown augmentation\(s\) \['shear'\]"),
    ({"pyramid_widths": (8, 0)}, r"TrainConfig.pyramid_widths\[1\] = 0"),
    ({"pyramid_widths": ()}, "TrainConfig.pyramid_widths must not be empty"),
    ({"resnet_widths": (8, 16), "resnet_blocks": (1,)}, "must be non-empty and of equal length"),
    ({"live_n_range": (4.0, 3.0)}, r"TrainConfig.live_n_range\[1\] = 3.0 is outside"),
    ({"live_workers": -1}, "TrainConfig.live_workers = -1"),
    ({"data": 3}, "TrainConfig.data must be a path, got 3"),
    ({"data": None}, "TrainConfig.data is required unless live=True"),
    ({"seed": 2**63},
     r"TrainConfig.seed = 9223372036854775808 is outside the allowed range \[0, 9223372036854775807\]"),
    ({"seed": -1}, r"TrainConfig.seed = -1 is outside the allowed range"),
    ({"live_seed": 10**400}, r"TrainConfig.live_seed = 10\*\*400 is outside the allowed range"),
    ({"live_sim": {"cells": 3}}, r"TrainConfig.live_sim: SimConfig.cells = 3 is outside the allowed range"),
    ({"live_sim": {"scheme": "second"}}, "TrainConfig.live_sim: SimConfig.scheme = 'second' is not one of"),
    ({"live_sim": {"cels": 16}}, r"TrainConfig.live_sim: unknown SimConfig field\(s\) \['cels'\]"),
    ({"live_sim": {"n": 4.0}}, r"TrainConfig.live_sim sets \['n'\], which the live stream sets per simulation"),
    ({"live_sim": [1, 2]}, "TrainConfig.live_sim must be .SimConfig field, value. pairs"),
])
def test_bad_fields_raise_value_errors_naming_field_and_value(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**{"data": "x.h5", **changes})


def test_fields_are_canonical_and_round_trip():
    cfg = TrainConfig(data="x.h5", task="regress", uncertainty=True, model="resnet", epochs=7.0, batch_size=32,
                      optimizer="adamw", learning_rate=3e-3, weight_decay=0, schedule="constant", warmup_epochs=1,
                      patience=0, seed=9, normalisation="per_image", augment=["flip", "crop", "rot90"],
                      steps_per_call=2, conv_impl="xla", dropout=0.1, memory_budget_mb=0, resnet_widths=[8, 16],
                      resnet_blocks=[2, 1], eval_batch_size=64, live_sims_per_epoch=4, live_seed=5,
                      live_sim={"cells": 16}, live_n_range=[3, 4], live_workers=0)
    assert cfg.epochs == 7 and isinstance(cfg.epochs, int) and isinstance(cfg.warmup_epochs, float)
    assert cfg.augment == ("flip", "crop", "rot90") and cfg.resnet_widths == (8, 16)
    assert cfg.live_sim == (("cells", 16),) and cfg.live_n_range == (3.0, 4.0)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({**cfg.to_dict(), "lr": 1.0})
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.epochs = 3


def test_the_largest_seeds_are_accepted_where_they_are_used():
    import jax

    from turbsim import SimConfig

    cfg = TrainConfig(data="x.h5", seed=config.SEED_MAX, live_seed=config.SEED_MAX)
    assert cfg.seed == cfg.live_seed == 2**63 - 1
    jax.random.key(cfg.seed)  # parameters and dropout
    np.random.SeedSequence([cfg.seed, 7, 1]).generate_state(1)  # epochs' order and augmentations
    SimConfig(seed=cfg.live_seed)  # the live stream's simulations
    with pytest.raises(OverflowError):  # one more would not be
        jax.random.key(cfg.seed + 1)


def test_live_simulations_are_checked_and_canonical_when_the_config_is_built():
    cfg = TrainConfig(live=True, live_sim={"cells": 16.0, "t_end": 1, "scheme": "first"})
    assert cfg.live_sim == (("cells", 16), ("t_end", 1.0), ("scheme", "first"))
    assert isinstance(cfg.live_sim[0][1], int) and isinstance(cfg.live_sim[1][1], float)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_every_field_is_checked_and_documented():
    helps = config.field_help()
    for f in dataclasses.fields(TrainConfig):
        assert f.metadata["check"] is not None, f.name
        assert len(helps.get(f.name, "")) > 20, f.name
        assert "`" not in helps[f.name], helps[f.name]


def test_cosine_schedule_warms_up_then_decays_to_zero():
    cfg = TrainConfig(data="x.h5", epochs=4, warmup_epochs=1, learning_rate=0.1)
    lr = config.learning_rate_schedule(cfg, 10)
    got = np.array([float(lr(t)) for t in range(41)])
    np.testing.assert_allclose(got[:11], 0.01 * np.arange(11), atol=1e-7)
    assert np.all(np.diff(got[10:]) < 0) and got[40] == pytest.approx(0.0, abs=1e-9)
    const = config.learning_rate_schedule(cfg.replace(schedule="constant", warmup_epochs=0), 10)
    assert float(const(0)) == float(const(39)) == pytest.approx(0.1)


def test_model_and_optimizer_follow_the_configuration():
    from flax import nnx

    cfg = TrainConfig(data="x.h5", model="pyramid", pyramid_widths=(4, 8), pyramid_hidden=0, seed=3)
    model, opt = config.model_and_optimizer(cfg, 16, 10)
    again, _ = config.model_and_optimizer(cfg, 16, 10)
    assert model.hidden is None and len(model.convs) == 2 and isinstance(opt, nnx.Optimizer)
    import jax

    for a, b in zip(jax.tree.leaves(nnx.state(model, nnx.Param)), jax.tree.leaves(nnx.state(again, nnx.Param))):
        np.testing.assert_array_equal(a, b)  # the same seed, the same parameters
