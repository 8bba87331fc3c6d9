"""Tests of turbsim.simulate: one trip from a SimConfig to a result, and its memory."""
import json
import subprocess
import sys

import numpy as np
import pytest

from turbsim import SimConfig, ic, solver
from turbsim._solver import _kernels
from turbsim.simulate import InsufficientMemoryError, memory_estimate
from turbsim.simulate import simulate as simulate_fn

# the module (``turbsim.simulate`` also names the function it defines)
sim = sys.modules["turbsim.simulate"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scheme", ["first", "muscl"])
def test_simulate_equals_evolve_of_the_initial_conditions(dtype, scheme):
    # simulate builds the solver state straight from the IC's float64 field and (float32)
    # writes the float64 result over its own buffers: the numbers are those of the plain
    # road, initial_conditions -> evolve, bit for bit
    cfg = SimConfig(cells=24, seed=7, dtype=dtype, scheme=scheme, t_end=0.1)
    res = simulate_fn(cfg, threads=1, outputs=[0.05])
    rho0, vel0 = ic.initial_conditions(cfg)
    cu = cfg.code_units
    ref = solver.evolve(rho0, vel0, dx=1 / cfg.cells, cs=1.0, t_end=cfg.t_end_code,
                        outputs=[0.05 * cfg.t_end_code / cfg.t_end], scheme=scheme,
                        dtype=np.dtype(dtype), threads=1)
    assert res.steps == ref.steps
    assert res.density.dtype == res.velocity.dtype == np.float64
    assert np.array_equal(res.density, ref.rho * cu["density"])
    assert np.array_equal(res.velocity, ref.velocity * cu["velocity"])
    (_, d_mid, v_mid), = res.snapshots
    assert np.array_equal(d_mid, ref.snapshots[0].rho * cu["density"])
    assert np.array_equal(v_mid, ref.snapshots[0].velocity * cu["velocity"])


def test_memory_estimate_components():
    cfg = SimConfig(cells=64, dtype="float32", scheme="muscl")
    est = memory_estimate(cfg, outputs=[0.1, 0.2], threads=2)
    n3 = 64 ** 3
    assert est["state"] == est["work"] == 4 * n3 * 4
    assert est["ic_modes"] == 3 * 64 * 64 * 33 * 16
    assert est["snapshots"] == 2 * 4 * n3 * 8
    assert est["conversion"] == n3 * 4
    assert est["thread_buffers"] == _kernels.work_bytes((64,) * 3, "float32", 1, 1, 1.0, 2) > 0
    assert est["peak"] == max(est["ic_phase"], est["run_phase"], est["final_phase"])
    # float64: the result is made in place, no conversion copy
    est64 = memory_estimate(cfg.replace(dtype="float64"))
    assert est64["state"] == 4 * n3 * 8 and est64["conversion"] == 0 and est64["snapshots"] == 0
    # the kernels' planes grow with the threads and with the scheme's stencil
    one = _kernels.work_bytes((64,) * 3, "float64", 1, 1, 1.0, 1)
    assert _kernels.work_bytes((64,) * 3, "float64", 1, 1, 1.0, 2) == 2 * one
    assert _kernels.work_bytes((64,) * 3, "float64", 0, 1, 1.0, 1) < one


@pytest.mark.parametrize("cells,dtype", [(512, "float32"), (256, "float64")])
def test_big_runs_estimated_within_three_states(cells, dtype):
    est = memory_estimate(SimConfig(cells=cells, dtype=dtype), threads=16)
    assert est["peak"] <= 3 * est["state"]


def test_simulate_refuses_a_run_that_cannot_fit(monkeypatch):
    cfg = SimConfig(cells=32, t_end=0.01)
    need = memory_estimate(cfg)["peak"]
    monkeypatch.setattr(sim, "available_memory", lambda: need - 1)

    def no_allocation(*args, **kwargs):
        raise AssertionError("simulate allocated its buffers before refusing the run")

    monkeypatch.setattr(solver, "state_buffers", no_allocation)
    with pytest.raises(InsufficientMemoryError) as info:
        simulate_fn(cfg)
    err = info.value
    assert isinstance(err, MemoryError)
    assert err.needed == need and err.available == need - 1
    msg = str(err)
    assert f"{need / 2**30:.2f} GiB" in msg and f"{(need - 1) / 2**30:.2f} GiB are available" in msg
    assert "32^3 float64" in msg and "state" in msg


def test_simulate_runs_when_memory_fits_or_is_unknown(monkeypatch):
    cfg = SimConfig(cells=16, t_end=0.01, scheme="first")
    monkeypatch.setattr(sim, "available_memory", lambda: memory_estimate(cfg)["peak"])
    assert simulate_fn(cfg, threads=1).steps > 0
    monkeypatch.setattr(sim, "available_memory", lambda: None)
    assert simulate_fn(cfg, threads=1).steps > 0
    monkeypatch.setattr(sim, "available_memory", lambda: 1)
    assert simulate_fn(cfg, threads=1, check_memory=False).steps > 0


def test_available_memory_is_positive():
    avail = sim.available_memory()
    assert avail is None or avail > 0


PEAK = r"""
import json, sys
from turbsim import SimConfig, simulate
from turbsim.simulate import memory_estimate

def status(key):
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

cfg = SimConfig(cells=int(sys.argv[1]), dtype=sys.argv[2], t_end=0.005)
base = status("VmRSS")
res = simulate(cfg, threads=2)
print(json.dumps(dict(peak=status("VmHWM") - base, estimate=memory_estimate(cfg, threads=2))))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_peak_memory_within_estimate(dtype):
    # the estimate counts what the run allocates; the process adds little besides (FFT
    # plans, the allocator's slack): 48 MiB at most
    out = subprocess.run([sys.executable, "-c", PEAK, "128", dtype], capture_output=True,
                         text=True, check=True)
    fig = json.loads(out.stdout.strip().splitlines()[-1])
    est = fig["estimate"]
    assert fig["peak"] <= est["peak"] + 48 * 2**20
    # and the run needs about what is estimated: no phase was left out
    assert fig["peak"] >= 0.9 * est["peak"]
