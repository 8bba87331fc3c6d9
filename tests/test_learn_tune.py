"""learn.tune: a search on the test split only, stored in SQLite (resumable), its best configuration a file
that learn.fit reads."""
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

pytest.importorskip("flax")
optuna = pytest.importorskip("optuna")

from conftest import TINY_RUN  # noqa: E402
from learn import config as lconfig  # noqa: E402
from learn import fit, sections, tune  # noqa: E402
from learn.config import TrainConfig  # noqa: E402

FAST = {**TINY_RUN, "epochs": 1, "dropout": None, "steps_per_call": 1, "batch_size": 64, "warmup_epochs": 0.0}
"""One epoch of the tiny pyramid: a trial in about a second."""


def _base(data):
    return TrainConfig(data=os.fspath(data), **FAST)


class Stop(Exception):
    """Raised by a callback to kill a search after some trials."""


@pytest.fixture(scope="module")
def resumed(tiny_binary, tmp_path_factory):
    """A search of 2 trials killed after its first, then resumed: (folder, study, trained run dirs, first trial)."""
    out = tmp_path_factory.mktemp("tune")
    trained = []
    real = tune.train_and_evaluate

    def counting(config, workdir, **kw):
        trained.append(workdir.name)
        return real(config, workdir, **kw)

    def stop_after_one(study, trial):
        raise Stop  # the process dies after its first finished trial

    space = ("learning_rate", "normalisation")
    mp = pytest.MonkeyPatch()
    mp.setattr(tune, "train_and_evaluate", counting)
    try:
        with pytest.raises(Stop):
            tune.tune(_base(tiny_binary), out, trials=2, space=space, prune=False, on_trial_end=stop_after_one)
        assert trained == ["0000"]
        with sqlite3.connect(out / tune.DB_NAME) as con:  # the finished trial is in the file
            assert con.execute("select count(*) from trials where state = 'COMPLETE'").fetchone()[0] == 1
        first = optuna.load_study(study_name="pyramid-classify-loss",
                                  storage=f"sqlite:///{out / tune.DB_NAME}").trials[0]
        study = tune.tune(_base(tiny_binary), out, trials=2, space=space, prune=False)
        again = tune.tune(_base(tiny_binary), out, trials=2, space=space, prune=False)  # nothing left to do
    finally:
        mp.undo()
    return out, study, again, trained, first


def test_an_interrupted_search_resumes_from_its_sqlite_file_without_repeating_trials(resumed):
    out, study, again, trained, first = resumed
    assert trained == ["0000", "0001"]  # the finished trial was not trained again, nor any after the second
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 2 and len(again.trials) == 2
    assert done[0].number == 0 and done[0].value == first.value and done[0].params == first.params
    assert done[1].params != first.params


def test_best_configuration_round_trips_through_fit_config(resumed, tmp_path):
    out, study, *_ = resumed
    section, best = tune.summarize(study, out)
    assert best == out / tune.BEST_NAME
    want = tune.best_config(study)
    assert want.learning_rate == study.best_params["learning_rate"]
    parser = fit.build_parser()
    got = fit.config_from_args(lconfig.parse_with_config_file(parser, ["--config", str(best), "--out", "o"]))
    assert got == want
    # options on the command line override the file; a switch set in the file can be turned off
    over = fit.config_from_args(lconfig.parse_with_config_file(
        fit.build_parser(), ["--config", str(best), "--out", "o", "--epochs", "7", "--no-symmetrize"]))
    assert over == want.replace(epochs=7, symmetrize=False)
    json_file = lconfig.write_config_file(tmp_path / "best.json", want)
    assert TrainConfig.from_dict(lconfig.read_config_file(json_file)) == want
    # the section for the report: the trials' table, the importance figure, the best file named
    sec = sections.read_sections(out)["tuning"]
    assert sec.figures and sec.figure_path(sec.figures[0]).is_file()
    assert len(sec.tables[0].rows) == 2 and "test split only" in sec.text and tune.BEST_NAME in sec.text


def test_bad_configuration_files_are_named(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "pyramid"\nlearning_rat = 0.1\n')
    with pytest.raises(SystemExit) as exc:
        fit.main(["--config", str(bad), "--data", "x.h5", "--out", str(tmp_path / "o")])
    assert exc.value.code == 2
    assert f"{bad}: unknown TrainConfig field(s) ['learning_rat']" in capsys.readouterr().err
    with pytest.raises(ValueError, match="suffix '.yaml'"):
        lconfig.read_config_file(tmp_path / "c.yaml")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        lconfig.read_config_file(tmp_path / "broken.json")


def test_the_holdout_is_refused(tiny_binary, tmp_path, capsys):
    for extra in (["--holdout"], ["--eval-splits", "test", "holdout"]):
        with pytest.raises(SystemExit) as exc:
            tune.main(["--data", str(tiny_binary), "--out", str(tmp_path / "t"), *extra])
        assert exc.value.code == 2
        assert "never reads the holdout split" in capsys.readouterr().err
    assert not (tmp_path / "t").exists()
    with pytest.raises(ValueError, match="test split of a data file"):
        tune.tune(TrainConfig(live=True), tmp_path / "t", trials=1)


@pytest.mark.parametrize("model,padding", [("pyramid", "circular"), ("pyramid", "zeros"), ("study_cnn", "zeros"),
                                           ("resnet", "zeros")])
def test_the_search_space_gives_valid_configurations_per_model(model, padding):
    augment = ("flip", "rot90") if padding == "circular" else ("flip", "quadrant")
    base = TrainConfig(data="x.h5", model=model, padding=padding, augment=augment, optimizer="adamw")
    sampler = optuna.samplers.RandomSampler(seed=1)
    study = optuna.create_study(sampler=sampler)
    seen = set()
    for _ in range(12):
        trial = study.ask()
        cfg = base.replace(**tune.suggest(trial, base))  # validated by TrainConfig
        study.tell(trial, 0.0)
        seen.add(cfg.augment)
        assert 1e-4 <= cfg.learning_rate <= 1e-2 and cfg.normalisation in ("global", "per_image")
        if padding == "circular":
            assert not {"quadrant", "crop"} & set(cfg.augment)
    assert len(seen) > 1
    assert ("width_scale" in trial.params) == (model == "pyramid")
    assert ("resnet_width" in trial.params) == (model == "resnet")


@pytest.mark.slow
def test_a_killed_search_process_resumes_and_reruns_its_cut_trial(tiny_binary, tmp_path):
    out = tmp_path / "search"
    argv = [sys.executable, "-m", "learn.tune", "--data", str(tiny_binary), "--out", str(out), "--trials", "4",
            "--space", "learning_rate", "--no-prune", "--no-progress", "--model", "pyramid", "--pyramid-widths",
            "4", "8", "--pyramid-hidden", "8", "--epochs", "3", "--batch-size", "64", "--optimizer", "adamw"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    db = out / tune.DB_NAME
    deadline = time.monotonic() + 240
    while True:  # kill it once a trial has finished and the next one is running
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        if db.is_file():
            try:
                with sqlite3.connect(db) as con:
                    states = [s for (s,) in con.execute("select state from trials")]
            except sqlite3.Error:
                states = []
            if states.count("COMPLETE") >= 1 and "RUNNING" in states:
                break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    time.sleep(tune.GRACE_S + 1)  # the cut trial's heartbeat goes stale
    done = subprocess.run(argv + ["--json"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    study = optuna.load_study(study_name="pyramid-classify-loss", storage=f"sqlite:///{db}")
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 4
    assert optuna.trial.TrialState.FAIL in states  # the cut trial, failed and run again
    retried = [t for t in study.trials if "failed_trial" in t.system_attrs]
    assert retried and retried[0].state == optuna.trial.TrialState.COMPLETE
