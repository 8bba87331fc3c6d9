"""learn.pipeline and learn.study: what a fit keeps for the report, and the main job end to end at a tiny size."""
import json

import pytest

pytest.importorskip("flax")

from learn import bootstrap, pipeline, report, study  # noqa: E402
from learn.evaluate import load_metrics  # noqa: E402


def test_a_fit_keeps_the_per_image_outputs_behind_every_score(tiny_run):
    metrics = load_metrics(tiny_run)
    base = pipeline.load_baselines(tiny_run)
    for split in ("test", "holdout"):
        net = bootstrap.load_outputs(tiny_run / "eval" / split / pipeline.PREDICTIONS_FILE)
        got = bootstrap.metrics_record(net)
        for lvl in ("per_image", "per_sim"):
            assert got[lvl]["confusion"] == metrics[split][lvl]["confusion"]
            for k in ("accuracy", "auc"):
                assert got[lvl][k] == pytest.approx(metrics[split][lvl][k]), (split, lvl, k)
        spec = bootstrap.load_outputs(tiny_run / pipeline.BASELINES_DIR / "spectrum" / f"{split}.npz")
        assert spec.n_sims == net.n_sims and (spec.klass == net.klass).all()
        assert bootstrap.metrics_record(spec)["per_image"] == base["spectrum"][split]["per_image"]
    # the baselines read exactly the network's images (its normaliser, quadrants of 8 px)
    assert base["spectrum"]["images"] == "quadrants" and len(spec.sim_index) == len(net.sim_index)


def test_command_lines_are_recorded_in_order(tmp_path):
    pipeline.record_command(tmp_path, ["python", "-m", "learn.fit", "--data", "a b.h5"])
    pipeline.record_command(tmp_path, ["python", "-m", "learn.study", "--out", "x"])
    got = pipeline.load_commands(tmp_path)
    assert [c["command"] for c in got] == ["python -m learn.fit --data 'a b.h5'", "python -m learn.study --out x"]
    assert all(c["date"].endswith("+00:00") for c in got)


def _study(data, out, *extra):
    return study.main(["--data", str(data), "--out", str(out), "--holdout", "--epochs", "1", "--n-boot", "100",
                       "--no-progress", *extra])


def test_the_main_job_runs_end_to_end_at_a_tiny_size(tiny_binary32, tmp_path, capsys):
    # the best network with its baselines and the report; the long form below adds the study's CNN,
    # the explanations and a rerun
    out = tmp_path / "study"
    assert _study(tiny_binary32, out, "--recipes", "pyramid", "--no-explain") == 0
    printed = capsys.readouterr().out
    assert "pyramid (pyramid) on test: per_image accuracy" in printed and "hog baseline beside pyramid" in printed
    assert f"study report: {out / study.REPORT_NAME}" in printed
    page = (out / study.REPORT_NAME).read_text()
    for what in ("The answer", "pyramid", "spectrum baseline (full maps)", "stats baseline (full maps)",
                 "hog baseline (full maps)", "python -m learn.study", "Every method", "holdout"):
        assert what in page, what
    run = report.load_run_data(out / "pyramid")
    assert run.config["padding"] == "circular" and run.info["full_maps"] and run.config["epochs"] == 1
    assert not (out / "pyramid" / report.REPORT_FILE).exists()  # one report, the study's
    summary = json.loads((out / study.SUMMARY_NAME).read_text())
    assert summary["report"] == str(out / study.REPORT_NAME) and summary["wall_s"] > 0


@pytest.mark.slow
def test_the_whole_main_job_at_a_tiny_size_and_its_rerun(tiny_binary32, tiny_sweep, tmp_path, capsys, monkeypatch):
    out = tmp_path / "study"
    assert _study(tiny_binary32, out, "--eval-data", str(tiny_sweep)) == 0
    printed = capsys.readouterr().out
    assert "pyramid (pyramid) on test" in printed and "study_cnn (study_cnn) on holdout" in printed
    page = (out / study.REPORT_NAME).read_text()
    for what in ("study_cnn", "spectrum baseline (quadrants)", "Saliency", "Band occlusion", "t-SNE",
                 "The classifier on a sweep of n"):
        assert what in page, what
    runs = [report.load_run_data(out / name) for name in study.DEFAULT_RECIPES]
    assert runs[1].config["model"] == "study_cnn" and not runs[1].info["full_maps"]

    def refit(*a, **k):
        raise AssertionError("a stored baseline should have been reused")

    monkeypatch.setattr(pipeline.lbase, "fit_baseline", refit)
    assert _study(tiny_binary32, out, "--eval-data", str(tiny_sweep)) == 0  # rerun: runs and baselines reused
    assert len(pipeline.load_commands(out / "pyramid")) == 2


def test_the_study_refuses_bad_requests(tiny_binary32, tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        study.main(["--data", str(tmp_path / "missing.h5"), "--out", str(tmp_path / "s")])
    assert exc.value.code == 2 and "no such data file" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown recipe"):
        study.run_study(tiny_binary32, tmp_path / "s", recipes=("vgg",))
    assert not (tmp_path / "s").exists()
