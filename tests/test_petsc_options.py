"""Solver options belong to their solver: two SLEPc providers in one process keep their own
options, the command line wins, a misspelt option or a bad value is named, not ignored."""

import numpy as np
import pytest

from firedrake.petsc import PETSc

from fem_ms.gmsfem import MultiscaleSpace, SpectralBasisProvider, SpectralSolveError
from fem_ms.petsc_options import UnusedOptionsError

from .provider_contract import contract_problem


def _viewed(provider, path) -> str:
    pair, problem = contract_problem(2)
    MultiscaleSpace.for_problem(problem, pair, 3, basis=provider)
    return path.read_text()


def test_two_providers_in_one_process_each_use_their_own_options(tmp_path):
    # eps_view writes each solver's settings once per eigensolve: it shows what SLEPc really used
    a = SpectralBasisProvider({"eps_tol": 1e-9, "eps_view": f"ascii:{tmp_path / 'a.txt'}"}, progress=False)
    b = SpectralBasisProvider({"eps_tol": 1e-11, "eps_ncv": 17, "eps_view": f"ascii:{tmp_path / 'b.txt'}"},
                              progress=False)
    first_a = _viewed(a, tmp_path / "a.txt")
    view_b = _viewed(b, tmp_path / "b.txt")
    again_a = _viewed(a, tmp_path / "a.txt")
    for view in (first_a, again_a):
        assert "tolerance: 1e-09" in view and "number of column vectors (ncv): 17" not in view
    assert "tolerance: 1e-11" in view_b and "number of column vectors (ncv): 17" in view_b
    # nothing of either is left in PETSc's options database
    assert not [k for k in PETSc.Options().getAll() if k.startswith("gmsfem_")]


def test_a_failing_provider_does_not_change_the_next_one():
    pair, problem = contract_problem(2)
    from fem_ms.gmsfem import SpectralConvergenceError

    with pytest.raises(SpectralConvergenceError):
        MultiscaleSpace.for_problem(problem, pair, 3,
                                    basis=SpectralBasisProvider({"eps_max_it": 1, "eps_ncv": 5}, progress=False))
    space = MultiscaleSpace.for_problem(problem, pair, 3, basis=SpectralBasisProvider(progress=False))
    assert len(space.bases.vectors) == len(space.neighbourhoods)


def test_command_line_options_under_the_prefix_win_and_stay():
    options = PETSc.Options()
    options["gmsfem_eps_tol"] = 1e-7  # as `-gmsfem_eps_tol 1e-7` on the command line would
    try:
        provider = SpectralBasisProvider({"eps_tol": 1e-12}, progress=False)
        assert float(provider.solver.options["eps_tol"]) == 1e-7
        pair, problem = contract_problem(2)
        MultiscaleSpace.for_problem(problem, pair, 3, basis=provider)
        assert options.getReal("gmsfem_eps_tol") == 1e-7
    finally:
        options.delValue("gmsfem_eps_tol")


@pytest.mark.parametrize("options, message", [
    ({"eps_tpye": "lapack"}, r"did not use the option\(s\) gmsfem_eps_tpye \(did you mean gmsfem_eps_type\?\)"),
    ({"st_ksp_tpye": "gmres"}, r"gmsfem_st_ksp_tpye \(did you mean gmsfem_st_ksp_type\?\)"),
])
def test_misspelt_options_are_named(options, message):
    pair, problem = contract_problem(2)
    with pytest.raises(UnusedOptionsError, match=message):
        MultiscaleSpace.for_problem(problem, pair, 3, basis=SpectralBasisProvider(options, progress=False))


def test_bad_option_values_name_the_neighbourhood_and_keep_the_petsc_error():
    pair, problem = contract_problem(2)
    with pytest.raises(SpectralSolveError, match=r"SLEPc failed in neighbourhood 0 \(corner\).*st_pc_type") as info:
        MultiscaleSpace.for_problem(problem, pair, 3,
                                    basis=SpectralBasisProvider({"st_pc_type": "no-such-pc"}, progress=False))
    assert info.value.__cause__ is not None


@pytest.mark.parametrize("bad", [0.0, np.nan, -1.0])
def test_kappa_changed_after_the_problem_was_built_is_named(bad):
    from fem_ms import solve

    pair, problem = contract_problem(2)
    problem.kappa.dat.data[3] = bad
    with pytest.raises(ValueError, match="kappa"):
        MultiscaleSpace.for_problem(problem, pair, 3, provider_options={"progress": False})
    with pytest.raises(ValueError, match="kappa"):
        solve(problem)


def test_options_must_be_a_dict_of_names():
    with pytest.raises(TypeError, match="must be a dict"):
        SpectralBasisProvider(["eps_tol"])
    with pytest.raises(ValueError, match="without prefix or leading '-'"):
        SpectralBasisProvider({"-eps_tol": 1e-9})


@pytest.mark.parametrize("problem_name", ["diffusion", "richards-newton", "richards-picard", "heat"])
def test_misspelt_fine_solver_options_are_named(problem_name):
    import firedrake as fd

    from fem_ms import Heat, Richards, solve

    pair, problem = contract_problem(2)
    kwargs = {}
    if problem_name.startswith("richards"):
        problem = Richards(problem.V, problem.kappa, 1.0)
        kwargs["method"] = problem_name.split("-")[1]
    elif problem_name == "heat":
        problem = Heat(problem.V, problem.kappa, 1.0, dt=1e-3, t_end=2e-3)
        kwargs["progress"] = False
    options = {"ksp_type": "preonly", "pc_type": "lu", "ksp_tpye": "cg"}
    with pytest.raises(UnusedOptionsError, match=r"ksp_tpye \(did you mean .*ksp_type\?\)"):
        solve(problem, solver=options, **kwargs)
    assert np.isfinite(fd.norm(solve(problem, solver={"ksp_type": "preonly", "pc_type": "lu"}, **kwargs).u))
