"""Exact solutions of the isothermal Euler equations, for testing the solver.

* :func:`sound_wave`: a linear travelling sound wave.
* :func:`riemann`: the exact solution of the isothermal Riemann problem (shock tube).

The isothermal Riemann problem (Toro 2009, ch. 4, with p = c^2 rho) has two nonlinear
waves around a star region of density ``rho*`` and velocity ``u*``. Across the left wave

* shock (``rho* > rho_L``): ``u* = u_L - c (rho* - rho_L) / sqrt(rho* rho_L)``, speed
  ``u_L - c sqrt(rho* / rho_L)``;
* rarefaction: ``u* = u_L - c ln(rho* / rho_L)``, fan between ``u_L - c`` and ``u* - c`` in
  which ``u = x/t + c`` and ``rho = rho_L exp((u_L - u) / c)``;

and symmetrically across the right wave. ``rho*`` is the root of ``u*_L(rho*) = u*_R(rho*)``.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import brentq


def sound_wave(x, t, *, amplitude, cs=1.0, rho0=1.0, wavelength=1.0):
    """Linear sound wave travelling towards +x.

    Parameters
    ----------
    x : ndarray
        Positions (same units as ``wavelength``).
    t : float
        Time.
    amplitude : float
        Relative density amplitude (``<< 1`` for the linear solution to hold).
    cs, rho0, wavelength : float
        Sound speed, mean density, wavelength.

    Returns
    -------
    rho, v : ndarray
        ``rho0 (1 + A sin(k (x - cs t)))`` and ``cs A sin(k (x - cs t))``.
    """
    phase = 2 * np.pi * (np.asarray(x) - cs * t) / wavelength
    return rho0 * (1 + amplitude * np.sin(phase)), cs * amplitude * np.sin(phase)


def _wave_velocity(rho_star, rho_k, u_k, c, side):
    """Velocity behind the left (side=-1) or right (side=+1) wave for a star density."""
    if rho_star > rho_k:
        du = c * (rho_star - rho_k) / np.sqrt(rho_star * rho_k)
    else:
        du = c * np.log(rho_star / rho_k)
    return u_k + side * du


def star_state(rho_l, u_l, rho_r, u_r, c=1.0):
    """Density and velocity of the star region of the isothermal Riemann problem.

    Parameters
    ----------
    rho_l, u_l, rho_r, u_r : float
        Left and right density and velocity.
    c : float
        Isothermal sound speed.

    Returns
    -------
    (rho_star, u_star) : tuple of float
    """
    if min(rho_l, rho_r) <= 0 or c <= 0:
        raise ValueError("densities and the sound speed must be positive")

    def mismatch(log_rho):
        r = np.exp(log_rho)
        return _wave_velocity(r, rho_l, u_l, c, -1) - _wave_velocity(r, rho_r, u_r, c, +1)

    lo, hi = np.log(min(rho_l, rho_r)) - 1.0, np.log(max(rho_l, rho_r)) + 1.0
    while mismatch(lo) < 0:
        lo -= 5.0
    while mismatch(hi) > 0:
        hi += 5.0
    log_rho = brentq(mismatch, lo, hi, xtol=1e-15, rtol=1e-15, maxiter=500)
    rho_star = float(np.exp(log_rho))
    return rho_star, float(_wave_velocity(rho_star, rho_l, u_l, c, -1))


def riemann(xi, rho_l, u_l, rho_r, u_r, c=1.0):
    """Exact solution of the isothermal Riemann problem at similarity coordinates ``xi = x/t``.

    Parameters
    ----------
    xi : ndarray
        ``(x - x0) / t``.
    rho_l, u_l, rho_r, u_r : float
        Left and right states.
    c : float
        Isothermal sound speed.

    Returns
    -------
    rho, u : ndarray
        Density and velocity at ``xi``.

    Examples
    --------
    >>> rho, u = riemann(np.array([-10.0, 10.0]), 1.0, 0.0, 0.1, 0.0)
    >>> rho.tolist(), u.tolist()
    ([1.0, 0.1], [0.0, 0.0])
    """
    xi = np.asarray(xi, dtype=float)
    rs, us = star_state(rho_l, u_l, rho_r, u_r, c)
    rho = np.empty_like(xi)
    u = np.empty_like(xi)
    # left wave
    if rs > rho_l:
        s = u_l - c * np.sqrt(rs / rho_l)
        left = xi < s
        rho[left], u[left] = rho_l, u_l
        fan = np.zeros_like(xi, dtype=bool)
    else:
        head, tail = u_l - c, us - c
        left = xi < head
        rho[left], u[left] = rho_l, u_l
        fan = (xi >= head) & (xi < tail)
        u[fan] = xi[fan] + c
        rho[fan] = rho_l * np.exp((u_l - u[fan]) / c)
    # right wave
    if rs > rho_r:
        s = u_r + c * np.sqrt(rs / rho_r)
        right = xi > s
        rho[right], u[right] = rho_r, u_r
        rfan = np.zeros_like(xi, dtype=bool)
    else:
        head, tail = u_r + c, us + c
        right = xi > head
        rho[right], u[right] = rho_r, u_r
        rfan = (xi <= head) & (xi > tail)
        u[rfan] = xi[rfan] - c
        rho[rfan] = rho_r * np.exp((u[rfan] - u_r) / c)
    star = ~(left | fan | right | rfan)
    rho[star], u[star] = rs, us
    return rho, u
