"""learn.fit: the command line is generated from TrainConfig's fields; short errors, exit 2."""
import dataclasses

import pytest

pytest.importorskip("flax")

from learn import fit  # noqa: E402
from learn.config import LIVE_SIM_OPTIONS, TrainConfig  # noqa: E402
from learn.models import MODELS  # noqa: E402


def _actions():
    return {a.dest: a for a in fit.build_parser()._actions}


def test_every_field_is_an_option_with_help():
    actions = _actions()
    fields = {f.name for f in dataclasses.fields(TrainConfig)} - {"live_sim"}
    assert fields <= set(actions), sorted(fields - set(actions))
    for name in fields | {"live_" + k for k in LIVE_SIM_OPTIONS}:
        assert len(actions[name].help) > 20, name
    text = " ".join(fit.build_parser().format_help().split())
    for model in MODELS:
        assert model in text
    for flag in ("--optimizer", "--schedule", "--warmup-epochs", "--live-sims-per-epoch", "--live-seed",
                 "--live-cells", "--live-t-end", "--live-scheme", "--live-workers", "--live-n-range", "--lr"):
        assert flag in text, flag
    assert "[MiB]" in text and "[Myr]" in text


def test_defaults_are_the_configs_and_options_reach_every_field():
    args = fit.build_parser().parse_args(["--data", "x.h5", "--out", "o"])
    assert fit.config_from_args(args) == TrainConfig(data="x.h5")
    argv = ["--data", "x.h5", "--out", "o", "--task", "regress", "--uncertainty", "--model", "resnet",
            "--epochs", "7", "--batch-size", "32", "--optimizer", "adamw", "--lr", "0.003", "--weight-decay", "0",
            "--schedule", "constant", "--warmup-epochs", "0.5", "--patience", "0", "--seed", "9",
            "--normalisation", "per_image", "--augment", "flip", "rot90", "--steps-per-call", "2",
            "--conv-impl", "xla", "--padding", "circular", "--dropout", "0.1", "--memory-budget-mb", "0",
            "--resnet-widths", "8", "16", "--resnet-blocks", "2", "1", "--pyramid-widths", "4", "8",
            "--pyramid-hidden", "16", "--eval-batch-size", "64", "--symmetrize",
            "--live", "--live-sims-per-epoch", "4", "--live-seed", "5", "--live-cells", "16", "--live-t-end", "0.1",
            "--live-scheme", "first", "--live-n-range", "3", "4", "--live-workers", "0"]
    cfg = fit.config_from_args(fit.build_parser().parse_args(argv))
    want = TrainConfig(data="x.h5", task="regress", uncertainty=True, model="resnet", epochs=7, batch_size=32,
                       optimizer="adamw", learning_rate=0.003, weight_decay=0, schedule="constant",
                       warmup_epochs=0.5, patience=0, seed=9, normalisation="per_image", augment=("flip", "rot90"),
                       steps_per_call=2, conv_impl="xla", padding="circular", dropout=0.1, memory_budget_mb=0,
                       resnet_widths=(8, 16), resnet_blocks=(2, 1), pyramid_widths=(4, 8), pyramid_hidden=16,
                       eval_batch_size=64, symmetrize=True, live=True, live_sims_per_epoch=4, live_seed=5,
                       live_sim=(("cells", 16), ("t_end", 0.1), ("scheme", "first")), live_n_range=(3, 4),
                       live_workers=0)
    assert cfg == want
    # every field moved away from its default: no option is silently dropped
    moved = {f.name for f in dataclasses.fields(TrainConfig) if getattr(cfg, f.name) != f.default}
    assert moved == {f.name for f in dataclasses.fields(TrainConfig)} - {"pyramid_skip", "refit_readout"}


def test_bad_values_are_two_short_lines_and_exit_2(capsys, tmp_path):
    for argv, message in ((["--epochs", "0"], "TrainConfig.epochs = 0 is outside the allowed range"),
                          (["--model", "vgg"], "invalid choice: 'vgg'"),
                          (["--dropout", "1.5"], "TrainConfig.dropout = 1.5"),
                          (["--eval-splits", "holdout"], "holdout split needs --holdout")):
        with pytest.raises(SystemExit) as exc:
            fit.main(["--data", str(tmp_path / "x.h5"), "--out", str(tmp_path / "o"), *argv])
        assert exc.value.code == 2
        err = capsys.readouterr().err.splitlines()
        assert len(err) == 2 and err[0].startswith("usage: python -m learn.fit") and message in err[1], err
    assert not (tmp_path / "o").exists()  # refused before anything is written
