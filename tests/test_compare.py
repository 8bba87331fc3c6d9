"""turbsim's solver against the real RAMSES outputs (issue: RAMSES cross-validation).

Measured here: difference/signal 7.2e-10 (first order, kolmo64_first_order), 6.4e-10
(MUSCL-Hancock, kolmo64), 6.2e-10 (MUSCL-Hancock, burgers64). The bound 1e-8 catches every
wrong ingredient: the plain CFL rule instead of RAMSES's (1.2e-6), the exact isothermal
wave speed instead of sqrt(gamma) c_s (3.3e-5), the other limiter or scheme (> 1e-2).
"""
import json
import warnings

import numpy as np
import pytest

from turbsim.compare import main as compare_main
from turbsim.ramses import RAMSES_GAMMA, load_ic
from turbsim.ramses import open as open_output
from turbsim.ramses.crosscheck import IcMismatchError, cross_validate, ic_mismatches
from turbsim.solver import evolve

BOUND = 1e-8
CASES = [("kolmo64_first_order", "first"), ("kolmo64", "muscl"), ("burgers64", "muscl")]


def paths(shared, case):
    return shared / "ramses" / case / "output_00002", shared / "ramses" / case / f"ic_{case}.npz"


@pytest.mark.parametrize("case,scheme", CASES)
def test_turbsim_reproduces_ramses(shared, case, scheme):
    out, ic = paths(shared, case)
    check = cross_validate(out, ic, scheme=scheme)
    assert check.steps == 7
    assert check.diff_over_signal < BOUND
    assert check.max_rel_diff < 1e-8
    # the statistics the report shows agree as well
    assert np.allclose(check.power_turbsim, check.power_ramses, rtol=1e-6)


def diff_over_signal(shared, case, **settings):
    out, ic = paths(shared, case)
    init, ds = load_ic(ic), open_output(out)
    rho_r = ds.to_uniform(6).density
    kw = dict(scheme="muscl", limiter="minmod", courant=0.8, gamma=RAMSES_GAMMA, ramses_dt=True)
    kw.update(settings)
    res = evolve(init.density, init.velocity, dx=init.dx, cs=init.cs, t_end=ds.time, **kw)
    return np.abs(res.rho - rho_r).sum() / np.abs(rho_r - 1).sum()


@pytest.mark.parametrize("case,wrong", [
    ("kolmo64_first_order", dict(scheme="first", ramses_dt=False)),   # time-step rule
    ("kolmo64_first_order", dict(scheme="first", gamma=1.0)),          # sound speed
    ("kolmo64_first_order", dict(scheme="muscl")),                     # scheme
    ("kolmo64", dict(limiter="moncen")),                               # limiter
    ("kolmo64", dict(courant=0.5)),                                    # Courant number
    ("kolmo64", dict(gamma=1.0, ramses_dt=False)),                     # both conventions
])
def test_a_wrong_setting_fails_the_bound(shared, case, wrong):
    assert diff_over_signal(shared, case, **wrong) > 10 * BOUND


def test_right_settings_pass_the_same_measure(shared):
    assert diff_over_signal(shared, "kolmo64") < BOUND


def test_cli_json_and_plot(shared, tmp_path, capsys):
    out, ic = paths(shared, "burgers64")
    png = tmp_path / "cmp.png"
    assert compare_main([str(out), "--ic", str(ic), "--json", "--plot", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["diff_over_signal"] < BOUND and result["scheme"] == "muscl"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_bad_input_exits_2(shared, tmp_path, capsys):
    out, _ = paths(shared, "kolmo64")
    assert compare_main([str(out), "--ic", str(tmp_path / "missing.npz")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        compare_main([str(out)])
    assert exc.value.code == 2


@pytest.mark.parametrize("case", ["kolmo64", "burgers64"])
def test_stop_after_ends_where_ramses_writes_its_output(shared, case):
    """RAMSES writes the 0.5 Myr output after the first full step past it; stop="after" too."""
    out, ic = paths(shared, case)
    init, ds = load_ic(ic), open_output(out)
    assert ds.time > 0.5  # the snapshot overshoots the requested time (code time unit = 1 Myr)
    res = evolve(init.density, init.velocity, dx=init.dx, cs=init.cs, t_end=0.5, stop="after",
                 scheme="muscl", limiter="minmod", courant=0.8, gamma=RAMSES_GAMMA, ramses_dt=True)
    assert res.steps == ds.info.nstep_coarse == 7
    # measured: 3.5e-10 (kolmo64), 3.8e-10 (burgers64); each dt follows the state, which
    # agrees with RAMSES's to ~1e-9
    assert res.time == pytest.approx(ds.time, rel=BOUND)
    rho_r = ds.to_uniform(6).density
    assert np.abs(res.rho - rho_r).sum() / np.abs(rho_r - 1).sum() < BOUND
    # landing exactly on 0.5 instead is a different state
    exact = evolve(init.density, init.velocity, dx=init.dx, cs=init.cs, t_end=0.5,
                   scheme="muscl", limiter="minmod", courant=0.8, gamma=RAMSES_GAMMA, ramses_dt=True)
    assert exact.time == 0.5 and np.abs(exact.rho - rho_r).sum() / np.abs(rho_r - 1).sum() > 1e3 * BOUND


# --------------------------------------------------------------------------------------
# An initial condition that does not belong to the snapshot is refused; a disagreement is
# never reported with exit status 0.
# --------------------------------------------------------------------------------------
def modified_ic(shared, case, path, **changes):
    """A copy of a case's IC file with some keys replaced (None: dropped)."""
    with np.load(paths(shared, case)[1]) as z:
        d = {k: z[k] for k in z.files}
    d.update(changes)
    np.savez(path, **{k: v for k, v in d.items() if v is not None})
    return path


def run_cli(capsys, *args):
    code = compare_main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_other_runs_ic_is_refused(shared, capsys):
    """burgers64's IC against kolmo64's snapshot: same grid and units, but the IC file records
    its own output_00002 at another time. Before: difference/signal 1.2, exit 0."""
    out, _ = paths(shared, "kolmo64")
    _, other = paths(shared, "burgers64")
    with pytest.raises(IcMismatchError, match="output_00002"):
        cross_validate(out, other)
    code, stdout, err = run_cli(capsys, out, "--ic", other)
    assert code == 2 and stdout == ""
    assert str(other) in err and "cannot be the initial condition" in err and "--force" in err, err
    assert "0.522359" in err and "0.535153" in err, err  # both times named


def test_ic_on_another_grid_is_refused(shared, capsys):
    out = shared / "ramses" / "amr" / "output_00001"
    _, ic64 = paths(shared, "kolmo64")
    code, _, err = run_cli(capsys, out, "--ic", ic64)
    assert code == 2 and "64^3" in err and "32^3" in err and "levelmin 5" in err, err


def test_ic_with_other_units_is_refused(shared, tmp_path, capsys):
    out, _ = paths(shared, "burgers64")
    ic = modified_ic(shared, "burgers64", tmp_path / "ic.npz", units_time_s=np.float64(3.15576e13 * 2))
    code, _, err = run_cli(capsys, out, "--ic", ic)
    assert code == 2 and "time unit" in err and "6.31152e+13" in err, err


def test_ic_other_than_the_t0_snapshot_is_refused(shared, tmp_path, capsys):
    """The amr run has its t = 0 snapshot beside the final one: an IC whose velocity differs
    from it (here: another field with the same statistics and the same file header) is refused."""
    out = shared / "ramses" / "amr" / "output_00002"
    with np.load(shared / "ramses" / "amr" / "ic_amr.npz") as z:
        swapped = dict(vx=z["vy"], vy=z["vz"], vz=z["vx"])
    ic = modified_ic(shared, "amr", tmp_path / "ic.npz", **swapped)
    code, _, err = run_cli(capsys, out, "--ic", ic)
    assert code == 2 and "velocity" in err and "output_00001" in err, err
    # its own IC passes the same check (and the 4-CPU twin's t = 0 snapshot too)
    init, ds = load_ic(shared / "ramses" / "amr" / "ic_amr.npz"), open_output(out)
    assert ic_mismatches(ds, init) == []
    assert ic_mismatches(open_output(shared / "ramses" / "amr_multicpu" / "output_00002"), init) == []


def test_disagreement_is_loud_and_not_exit_0(shared, tmp_path, capsys):
    """An IC stripped of everything that could identify its run passes the checks, but the
    result (difference/signal ~1) is flagged: a warning, exit 1; --force reports with exit 0."""
    out, _ = paths(shared, "kolmo64")
    ic = modified_ic(shared, "burgers64", tmp_path / "anon.npz", snapshot_names=None,
                     snapshot_times_code=None)
    code, stdout, err = run_cli(capsys, out, "--ic", ic)
    assert code == 1
    assert "WARNING" in err and "disagree" in err and "1e-03" in err, err
    assert "difference/signal" in stdout
    code, stdout, err = run_cli(capsys, out, "--ic", ic, "--force", "--json")
    assert code == 0 and "WARNING" in err
    result = json.loads(stdout)
    assert result["diff_over_signal"] > 0.1 and result["agrees"] is False and result["tolerance"] == 1e-3


def test_force_compares_a_mismatched_ic_and_says_so(shared, capsys, caplog):
    out, _ = paths(shared, "kolmo64")
    _, other = paths(shared, "burgers64")
    code, stdout, err = run_cli(capsys, out, "--ic", other, "--force", "--json")
    assert code == 0
    result = json.loads(stdout)
    assert result["ic_mismatches"] and "output_00002" in result["ic_mismatches"][0]
    assert "disagree" in err and "does not belong" in err
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("cannot be the initial condition" in w for w in warned), warned


def test_wrong_setting_exits_1(shared, capsys):
    """The right IC with the other limiter: a real disagreement (> 1e-2), exit 1."""
    out, ic = paths(shared, "kolmo64")
    code, _, err = run_cli(capsys, out, "--ic", ic, "--limiter", "moncen")
    assert code == 1 and "disagree" in err and "--limiter" in err, err


# An AMR snapshot is compared with AMR-lite, level by level: tests/test_ramses_amrcheck.py.


def test_t0_snapshot_compares_cleanly(shared, capsys):
    """At t = 0 the density is uniform (no signal): difference/signal is 0 when the fields
    are equal, with no NaN and no numpy warnings."""
    out = shared / "ramses" / "amr" / "output_00001"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        code, stdout, err = run_cli(capsys, out, "--ic", shared / "ramses" / "amr" / "ic_amr.npz", "--json")
    assert code == 0, err
    result = json.loads(stdout)
    assert result["diff_over_signal"] == 0.0 and result["steps"] == 0 and result["agrees"] is True
    assert all(np.isfinite(result["pdf_ramses"]))


def test_text_file_as_ic(shared, tmp_path, capsys):
    out, _ = paths(shared, "kolmo64")
    txt = tmp_path / "ic.txt"
    txt.write_text("this is not an initial condition\n")
    code, _, err = run_cli(capsys, out, "--ic", txt)
    assert code == 2 and "not a NumPy .npz file of an initial condition" in err and "pickle" not in err


def test_help_names_units(capsys):
    with pytest.raises(SystemExit) as exc:
        compare_main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for option in ("--ic", "--scheme", "--limiter", "--courant", "--threads", "--json", "--plot",
                   "--tolerance", "--force"):
        assert option in text
    assert "(0, 1]" in text and "Exit status" in text


@pytest.mark.parametrize("args,words", [
    (["--courant", "1.5"], ["--courant", "1.5"]),
    (["--threads", "0"], ["--threads", "0"]),
    (["--tolerance", "-1"], ["--tolerance", "-1"]),
    (["--scheme", "third"], ["--scheme", "third"]),
])
def test_bad_arguments_are_two_lines(shared, capsys, args, words):
    out, ic = paths(shared, "kolmo64")
    with pytest.raises(SystemExit) as exc:
        compare_main([str(out), "--ic", str(ic), *args])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 2, err
    for w in words:
        assert w in err, err
