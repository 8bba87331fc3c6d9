"""AMR-lite against RAMSES's AMR run (turbsim.ramses.amrcheck, python -m turbsim.compare on an
AMR output), and RAMSES namelists read back (turbsim.ramses.nml).

Measured on shared/ramses/amr (levels 5-7, err_grad_d 0.1, nexpand 1, t = 0.5996 Myr) with the
default schedule, AMR-lite's subcycling ("nsubcycle"): RAMSES's leaves cell for cell at every
level; difference/signal 3e-7, 9e-7, 9e-7; PDF L1 0; std ln(rho) +1e-7 relative; column-density
power 1.4e-6. With "subcycle" (one global step, levels flagged on their own clocks): leaves -5.3 %,
+15.0 %, +9.0 %; difference/signal 0.066-0.076; PDF L1 0.019; power 0.066. The uniform 32^3 run
from the same IC: 0.010 at level 5. amr_multicpu (4 ranks) gives the same figures.
"""
import json
import math

import numpy as np
import pytest

import turbsim.ramses as tr
from turbsim import SimConfig
from turbsim.compare import main as compare_main
from turbsim.ramses import nml
from turbsim.ramses.amrcheck import (DEFAULT_SCHEDULE, UnsupportedParameterError, amr_cross_validate,
                                     amr_parameters, schedules)

# the shared case's parameters (its CASE.md; its outputs carry no namelist.txt)
CASE_CONFIG = SimConfig(cells=32, levelmin=5, levelmax=7, refine="gradient", err_grad_d=0.1, nexpand=1,
                        n=11 / 3, seed=3, regrid_schedule="nsubcycle")


def case(shared, name="amr"):
    folder = shared / "ramses" / name
    return folder / "output_00002", folder / f"ic_{name}.npz"


@pytest.fixture(scope="module")
def amr_run(shared):
    """The AMR-lite run of shared/ramses/amr, once per module (a few seconds)."""
    out, ic = case(shared)
    return amr_cross_validate(out, ic, err_grad_d=0.1, nexpand=1, return_maps=True)


def test_amr_lite_reproduces_ramses_within_the_tolerances(amr_run):
    check, maps = amr_run
    assert check.parameters.schedule == DEFAULT_SCHEDULE == "nsubcycle" and check.levels == (5, 7)
    assert set(check.leaves) == {5, 6, 7}
    assert [b for _, b, _ in check.leaves.values()] == [24145, 66645, 18712]   # RAMSES's (CASE.md)
    assert all(abs(d) < 0.01 for _, _, d in check.leaves.values()), check.leaves  # equal (0, 0, 0)
    assert check.pdf_l1 < 1e-3                                                     # 0
    assert all(v < 1e-4 for v in check.diff_over_signal_per_level.values()), check.diff_over_signal_per_level
    assert check.diff_over_signal == max(check.diff_over_signal_per_level.values())  # 9e-7
    assert check.power_max_dev < 1e-3                                              # 1.4e-6
    assert abs(check.std_lnrho[0] / check.std_lnrho[1] - 1) < 1e-4                 # 1e-7
    assert check.uniform_diff_over_signal < 0.02                                   # 0.010
    assert check.agrees() and check.failures() == []
    assert len(check.k) == 64 and check.k[0] == 1
    # the maps of the figure: column densities over their mean, finest leaf level along z
    assert maps.sigma_ramses.shape == maps.sigma_turbsim.shape == (128, 128)
    assert maps.sigma_ramses.mean() == pytest.approx(1.0)
    assert maps.level_ramses.min() >= 5 and maps.level_ramses.max() == 7
    assert maps.level_turbsim.min() >= 5 and maps.level_turbsim.max() == 7


@pytest.fixture(scope="module")
def subcycle_run(shared):
    """The same case with one global step and RAMSES's flagging clocks ("subcycle")."""
    out, ic = case(shared)
    return amr_cross_validate(out, ic, err_grad_d=0.1, nexpand=1, schedule="subcycle")


def test_subcycle_schedule_within_the_looser_bounds(subcycle_run):
    """One global step with RAMSES's flagging clocks: the bounds it was accepted with (20 %,
    PDF L1 0.03, difference/signal 0.1), not the default tolerances (level 6 is +15 %)."""
    check = subcycle_run
    assert all(abs(d) < 0.2 for _, _, d in check.leaves.values()), check.leaves
    assert check.pdf_l1 < 0.03 and check.diff_over_signal < 0.1 and check.power_max_dev < 0.15
    assert not check.agrees() and any("level 6" in f for f in check.failures())


def test_tighter_tolerances_name_what_fails(subcycle_run, amr_run):
    check = subcycle_run   # leaves -5.3 %, +15.0 %, +9.0 %; PDF L1 0.019; power 0.066
    failures = check.failures(leaf_tolerance=0.10, tolerance=0.1, pdf_tolerance=0.03, power_tolerance=0.15)
    assert len(failures) == 1 and "level 6" in failures[0] and "66645" in failures[0], failures
    assert not check.agrees(tolerance=0.05, leaf_tolerance=0.2) and not check.agrees(pdf_tolerance=0.01)
    assert not check.agrees(power_tolerance=0.05, leaf_tolerance=0.2, tolerance=0.1, pdf_tolerance=0.03)
    exact, _ = amr_run     # nsubcycle: only a difference/signal tolerance below 9e-7 fails
    assert exact.agrees(leaf_tolerance=0.0, pdf_tolerance=1e-6, power_tolerance=1e-4, tolerance=1e-5)
    assert [f.split(":")[0] for f in exact.failures(tolerance=1e-9)] == ["level 5", "level 6", "level 7"]


def test_result_is_json(amr_run):
    check, _ = amr_run
    d = json.loads(json.dumps(check.to_dict()))
    assert d["amr"] is True and d["levels"] == [5, 7] and d["parameters"]["refine"] == "gradient"
    assert [row["level"] for row in d["per_level"]] == [5, 6, 7]
    assert d["leaves"]["6"][:2] == [check.leaves[6][0], 66645]
    assert d["diff_over_signal"] == check.diff_over_signal


def test_multicpu_run_gives_the_same_figures(shared, amr_run):
    check, _ = amr_run
    out, ic = case(shared, "amr_multicpu")
    other = amr_cross_validate(out, ic, err_grad_d=0.1, nexpand=1)
    assert other.leaves == check.leaves
    for L, v in check.diff_over_signal_per_level.items():
        assert other.diff_over_signal_per_level[L] == pytest.approx(v, rel=1e-6)
    assert other.pdf_l1 == pytest.approx(check.pdf_l1, abs=1e-6)
    assert other.power_max_dev == pytest.approx(check.power_max_dev, rel=1e-6)


# --------------------------------------------------------------------------------------
# The command line
# --------------------------------------------------------------------------------------
def run_cli(capsys, *args):
    code = compare_main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_prints_the_level_table_and_exits_0(shared, tmp_path, capsys, caplog, amr_run):
    """The writer's namelist of the case, given with --namelist: the run's own parameters."""
    out, ic = case(shared)
    nml_path = tr.write_ic_from_config(tmp_path / "run", CASE_CONFIG)
    png = tmp_path / "amr.png"
    code, stdout, err = run_cli(capsys, out, "--ic", ic, "--namelist", nml_path, "--plot", png)
    assert code == 0, err
    assert "leaves AMR-lite" in stdout and "leaves RAMSES" in stdout and "difference/signal" in stdout
    check, _ = amr_run
    for L, (a, b, d) in check.leaves.items():    # one row per level, the library's figures
        assert f"{L:5d}   {a:15d}   {b:13d}   {d:+10.1%}" in stdout, stdout
    assert "schedule nsubcycle" in stdout and "all within" in stdout and "PDF L1" in stdout
    assert "no namelist" not in stdout and not [r for r in caplog.records if "no RAMSES namelist" in r.getMessage()]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_json_and_exit_1_above_a_tolerance(shared, capsys):
    out, ic = case(shared)
    code, stdout, err = run_cli(capsys, out, "--ic", ic, "--json", "--schedule", "subcycle", "--tolerance", "0.1",
                                "--pdf-tolerance", "0.03", "--power-tolerance", "0.15")
    assert code == 1
    result = json.loads(stdout)
    assert result["agrees"] is False and result["tolerances"]["leaves"] == 0.1
    assert result["tolerance"] == 0.1 and len(result["failures"]) == 1 and "level 6" in result["failures"][0]
    assert [row["level"] for row in result["per_level"]] == [5, 6, 7]
    assert "WARNING" in err and "disagree" in err and "level 6" in err, err


def test_cli_refuses_an_unsupported_namelist_option(shared, tmp_path, capsys):
    out, ic = case(shared)
    path = tmp_path / "namelist.nml"
    path.write_text(tr.namelist(tr.run_from_config(CASE_CONFIG)) + "&REFINE_PARAMS err_grad_p=0.2 /\n")
    code, stdout, err = run_cli(capsys, out, "--ic", ic, "--namelist", path)
    assert code == 2 and stdout == ""
    assert "err_grad_p" in err and str(path) in err, err


def test_help_names_the_amr_options(capsys):
    with pytest.raises(SystemExit):
        compare_main(["--help"])
    text = capsys.readouterr().out
    for option in ("--schedule", "--namelist", "--err-grad-d", "--nexpand", "--m-refine",
                   "--leaf-tolerance", "--pdf-tolerance", "--power-tolerance", "AMR"):
        assert option in text
    assert all(s in text for s in schedules())


# --------------------------------------------------------------------------------------
# Namelists: what AMR-lite cannot do is refused by name; the writer's namelist reads back
# --------------------------------------------------------------------------------------
def case_blocks(extra: str = "") -> dict:
    return nml.parse(tr.namelist(tr.run_from_config(CASE_CONFIG)) + extra)


@pytest.mark.parametrize("extra,name", [
    ("&REFINE_PARAMS err_grad_p=0.2 /", "err_grad_p"),
    ("&REFINE_PARAMS err_grad_u=0.2 /", "err_grad_u"),
    ("&REFINE_PARAMS interpol_type=2 /", "interpol_type"),
    ("&REFINE_PARAMS interpol_var=1 /", "interpol_var"),
    ("&REFINE_PARAMS floor_d=1e-5 /", "floor_d"),
    ("&REFINE_PARAMS jeans_refine=3*4.0 /", "jeans_refine"),
    ("&REFINE_PARAMS r_refine=3*0.2 /", "r_refine"),
    ("&REFINE_PARAMS m_refine=3*8.0 /", "mass_sph"),
    ("&REFINE_PARAMS m_refine=8.0, 4.0 mass_sph=1e-4 /", "m_refine"),
    ("&AMR_PARAMS nexpand=2,1 /", "nexpand"),
    ("&RUN_PARAMS nsubcycle=1,2 /", "nsubcycle"),
    ("&RUN_PARAMS nsubcycle=3*4 /", "nsubcycle"),
    ("&RUN_PARAMS poisson=.true. /", "poisson"),
    ("&BOUNDARY_PARAMS nboundary=2 /", "nboundary"),
    ("&HYDRO_PARAMS riemann='hllc' /", "riemann"),
])
def test_unsupported_parameters_are_named(extra, name):
    with pytest.raises(UnsupportedParameterError, match=name):
        amr_parameters(5, 7, case_blocks(extra))


def test_namelist_levels_must_be_the_snapshots():
    with pytest.raises(ValueError, match="levelmax = 7.*info file says 8"):
        amr_parameters(5, 8, case_blocks())
    with pytest.raises(UnsupportedParameterError, match="levelmin = 2"):
        amr_parameters(2, 4, {})


def test_writer_namelist_round_trip(tmp_path):
    """An AMR-lite config -> RAMSES namelist (write_ic_from_config) -> the same AMR-lite parameters."""
    cfg = SimConfig(cells=32, levelmin=5, levelmax=8, refine="gradient+mass", err_grad_d=0.25, m_refine=8.0,
                    nexpand=2, courant=0.6, limiter="moncen", n=11 / 3, seed=3)
    path = tr.write_ic_from_config(tmp_path, cfg)
    blocks = nml.read(path)
    assert (blocks["amr_params"]["levelmin"], blocks["amr_params"]["levelmax"]) == (5, 8)
    p = amr_parameters(5, 8, path)
    assert (p.err_grad_d, p.m_refine, p.nexpand, p.refine) == (0.25, 8.0, 2, "gradient+mass")
    assert (p.scheme, p.limiter, p.courant) == ("muscl", "moncen", 0.6)
    assert p.schedule == "global" and set(p.sources.values()) == {str(path)}   # SimConfig's default
    for schedule in ("nsubcycle", "global"):   # "subcycle" runs on RAMSES's nsubcycle = 2: "nsubcycle"
        written = tr.write_ic_from_config(tmp_path / schedule, cfg.replace(regrid_schedule=schedule))
        back = amr_parameters(5, 8, written)
        assert back.schedule == schedule
    # each criterion alone, and the shared case's own parameters
    only = amr_parameters(5, 8, tr.write_ic_from_config(tmp_path / "g", cfg.replace(refine="gradient")))
    assert (only.err_grad_d, only.m_refine, only.refine) == (0.25, None, "gradient")
    only = amr_parameters(5, 8, tr.write_ic_from_config(tmp_path / "m", cfg.replace(refine="mass")))
    assert (only.err_grad_d, only.m_refine, only.refine) == (None, 8.0, "mass")
    shared = amr_parameters(5, 7, case_blocks())
    assert (shared.err_grad_d, shared.m_refine, shared.nexpand, shared.scheme, shared.limiter, shared.courant) == \
        (0.1, None, 1, "muscl", "minmod", 0.8)


def test_arguments_override_the_namelist_and_nsubcycle_1_means_global():
    one_step = nml.parse(tr.namelist(tr.run_from_config(CASE_CONFIG.replace(regrid_schedule="global"))))
    p = amr_parameters(5, 7, one_step, err_grad_d=0.3, nexpand=0)
    assert (p.err_grad_d, p.nexpand, p.schedule) == (0.3, 0, "global")
    assert p.sources["err_grad_d"] == "argument" and p.sources["schedule"] == "namelist"
    assert amr_parameters(5, 7, case_blocks(), schedule="global").schedule == "global"
    with pytest.raises(ValueError, match="schedule"):
        amr_parameters(5, 7, case_blocks(), schedule="weekly")


def test_without_namelist_amr_lite_defaults_with_a_warning(caplog):
    p = amr_parameters(5, 7)
    assert (p.err_grad_d, p.nexpand, p.m_refine, p.schedule) == (0.1, 1, None, "nsubcycle")
    assert p.sources["err_grad_d"] == "default"
    assert any("no RAMSES namelist" in r.getMessage() for r in caplog.records)


def test_mass_criterion_converted_to_levelmin_cell_masses():
    """RAMSES's m_refine counts in mass_sph; AMR-lite's in the mean mass of a levelmin cell."""
    blocks = nml.parse("&REFINE_PARAMS m_refine=3*4.0, mass_sph=6.103515625e-05 /")   # 2 / 32^3
    assert amr_parameters(5, 7, blocks).m_refine == pytest.approx(8.0)
    assert amr_parameters(5, 7, blocks, box_mass=2.0).m_refine == pytest.approx(4.0)


def test_nml_syntax():
    text = """! a comment line
&RUN_PARAMS hydro=.true., poisson=F /
&INIT_PARAMS
initfile(1)='ic/dir' ! a slash inside quotes
filetype="grafic"
/
&REFINE_PARAMS
m_refine=2*1d0, 3.
err_grad_d = .5
x_refine(3)=0.25
&END
"""
    b = nml.parse(text)
    assert b["run_params"] == {"hydro": True, "poisson": False}
    assert b["init_params"] == {"initfile": {1: "ic/dir"}, "filetype": "grafic"}
    assert b["refine_params"]["m_refine"] == {1: 1.0, 2: 1.0, 3: 3.0}
    assert b["refine_params"]["err_grad_d"] == 0.5 and b["refine_params"]["x_refine"] == {3: 0.25}
    assert nml.per_level(b["refine_params"]["m_refine"], 5, 8, -1.0) == {5: 1.0, 6: 1.0, 7: 3.0, 8: -1.0}
    with pytest.raises(nml.NamelistError, match="&AMR_PARAMS is not closed"):
        nml.parse("&AMR_PARAMS levelmin=5\n", "x.nml")
    with pytest.raises(nml.NamelistError, match="x.nml.*levelmin"):
        nml.parse("&AMR_PARAMS levelmin=five /", "x.nml")
    assert math.isclose(nml.parse("&A x=1.5D-3 /")["a"]["x"], 1.5e-3)
    assert np.isclose(nml.parse("&A x=-2 /")["a"]["x"], -2)


def test_amr_options_on_a_uniform_output_are_ignored_with_a_warning(shared, capsys, caplog):
    out, ic = case(shared, "kolmo64")
    code, stdout, err = run_cli(capsys, out, "--ic", ic, "--schedule", "global", "--err-grad-d", "0.2", "--json")
    assert code == 0, err
    assert json.loads(stdout)["diff_over_signal"] < 1e-8     # the uniform comparison, as before
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("--err-grad-d" in w and "--schedule" in w and "AMR outputs only" in w for w in warned), warned
