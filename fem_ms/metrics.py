"""Relative errors between finite element solutions, also across nested meshes.

A solution on a coarser mesh of a nested pair is interpolated into the reference solution's
space first; for P1/Q1 on nested meshes that is exact, so the error is the true error.
"""

from __future__ import annotations

import ufl

import firedrake as fd

__all__ = ["relative_l2_error", "relative_h1_error", "relative_energy_error", "on_reference_space"]


def on_reference_space(u: fd.Function, reference: fd.Function) -> fd.Function:
    """``u`` as a function in the space of ``reference`` (interpolated if it lives elsewhere)."""
    if not isinstance(u, fd.Function) or not isinstance(reference, fd.Function):
        raise TypeError("u and reference must be firedrake Functions")
    if u.function_space() == reference.function_space():
        return u
    return fd.Function(reference.function_space()).interpolate(u)


def _relative(error_form, reference_form) -> float:
    den = fd.assemble(reference_form)
    if den == 0:
        raise ValueError("the reference solution has zero norm: relative error undefined")
    return float(fd.assemble(error_form) / den) ** 0.5


def relative_l2_error(u: fd.Function, reference: fd.Function) -> float:
    """‖u − u_ref‖_L2 / ‖u_ref‖_L2."""
    e = on_reference_space(u, reference) - reference
    return _relative(e**2 * ufl.dx, reference**2 * ufl.dx)


def relative_h1_error(u: fd.Function, reference: fd.Function, seminorm: bool = True) -> float:
    """Relative H1 error: ``|u − u_ref|_H1 / |u_ref|_H1`` (``seminorm=True``) or the full H1 norm."""
    e = on_reference_space(u, reference) - reference

    def sq(w):
        s = ufl.inner(ufl.grad(w), ufl.grad(w)) * ufl.dx
        return s if seminorm else s + w**2 * ufl.dx

    return _relative(sq(e), sq(reference))


def relative_energy_error(u: fd.Function, reference: fd.Function, kappa) -> float:
    """Relative energy-norm error ``(∫ κ|∇(u − u_ref)|² / ∫ κ|∇u_ref|²)^½``."""
    e = on_reference_space(u, reference) - reference
    return _relative(kappa * ufl.inner(ufl.grad(e), ufl.grad(e)) * ufl.dx,
                     kappa * ufl.inner(ufl.grad(reference), ufl.grad(reference)) * ufl.dx)
