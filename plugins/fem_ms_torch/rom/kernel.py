"""The kernel method of Batlle, Darcy, Hosseini & Owhadi (2024), "Kernel methods are competitive
for operator learning", with PCA on both sides, by scikit-learn.

Their setup, as the GMsFEM-NO paper's appendix F used it (baseline 4, "combined with POD"): the
input functions (here scaled log κ on the cells and f on the vertices, one vector) are reduced
to ``n_in`` principal components, the outputs u to ``n_out``; a vector-valued kernel ridge
regression with the diagonal operator-valued kernel K(a, a') = k(a, a') I maps input
coefficients to output coefficients (scikit-learn's ``sklearn.kernel_ridge.KernelRidge``
with several targets is exactly that). k is Matérn (ν = 5/2, their default) or RBF with its
length scale the median pairwise distance of the training inputs times ``length_scale``, and
nugget ``alpha``; with ``cv_folds`` both are chosen by cross-validated grid search
(``sklearn.model_selection.GridSearchCV``), as their code does.

Not a network: it is fitted in closed form and has no training core run; it offers the same
interface as the networks (:mod:`.baseline`) and refuses epochs.
"""

from __future__ import annotations

import numpy as np

from .baseline import OperatorBaseline

__all__ = ["KernelRegression"]

_KERNELS = ("matern", "rbf")


class KernelRegression(OperatorBaseline):
    """PCA + kernel ridge regression (see the module).

    Parameters
    ----------
    n_in, n_out : int
        Principal components of the inputs and of the outputs.
    kernel : {"matern", "rbf"}
    length_scale : float
        Multiple of the median pairwise distance of the training input coefficients.
    alpha : float
        The nugget (ridge) added to the kernel matrix's diagonal.
    cv_folds : int, optional
        Choose ``length_scale`` among ``length_scale × (1/4, 1/2, 1, 2, 4)`` and ``alpha`` among
        ``alpha × (1, 1e3, 1e6)`` by ``cv_folds``-fold cross-validation (mean squared error of
        the output coefficients).

    Attributes
    ----------
    chosen : dict
        The length scale (absolute) and alpha the fit used.
    """

    name = "kernel (Batlle et al.)"
    iterative = False

    def __init__(self, n_in: int = 100, n_out: int = 100, kernel: str = "matern", length_scale: float = 1.0,
                 alpha: float = 1e-8, cv_folds: int | None = None):
        super().__init__()
        from fem_ms.checks import check_int, check_real

        if kernel not in _KERNELS:
            raise ValueError(f"KernelRegression: kernel must be one of {_KERNELS}, got {kernel!r}")
        self.n_in, self.n_out = check_int("n_in", n_in), check_int("n_out", n_out)
        self.kernel = kernel
        self.length_scale = check_real("length_scale", length_scale, positive=True)
        self.alpha = check_real("alpha", alpha, positive=True)
        self.cv_folds = None if cv_folds is None else check_int("cv_folds", cv_folds, low=2)
        self.chosen: dict = {}

    def _inputs(self, kappa, f) -> np.ndarray:
        log_kappa = (np.log(kappa) - self._log_kappa[0]) / self._log_kappa[1]
        return np.concatenate([log_kappa.reshape(len(kappa), -1), (f / self._f_scale).reshape(len(f), -1)], axis=1)

    def _k(self, length_scale: float):
        from sklearn.gaussian_process.kernels import RBF, Matern

        return Matern(length_scale=length_scale, nu=2.5) if self.kernel == "matern" else RBF(length_scale=length_scale)

    def _fit(self, data, *, epochs, max_cpu_seconds, seed, progress, validation, validate_every) -> None:
        from scipy.spatial.distance import pdist
        from sklearn.decomposition import PCA
        from sklearn.kernel_ridge import KernelRidge
        from sklearn.model_selection import GridSearchCV, KFold

        kappa, f, u = data["kappa"], data["f"], data["u"]
        samples = len(u)
        if max(self.n_in, self.n_out) > samples:
            raise ValueError(f"KernelRegression: n_in={self.n_in} and n_out={self.n_out} must not exceed the {samples} "
                             f"training samples")
        log_kappa = np.log(kappa)
        self._log_kappa = (log_kappa.mean(), max(log_kappa.std(), 1e-12))
        self._f_scale = max(np.abs(f).max(), 1e-12)
        self._u_scale = max(np.abs(u).max(), 1e-300)
        self._pca_in = PCA(self.n_in, svd_solver="full").fit(self._inputs(kappa, f))
        self._pca_out = PCA(self.n_out, svd_solver="full").fit(u.reshape(samples, -1) / self._u_scale)
        a = self._pca_in.transform(self._inputs(kappa, f))
        c = self._pca_out.transform(u.reshape(samples, -1) / self._u_scale)
        distances = pdist(a)
        median = float(np.median(distances[distances > 0])) if np.any(distances > 0) else 1.0
        scale = self.length_scale * median
        if self.cv_folds is None:
            self._regressor = KernelRidge(alpha=self.alpha, kernel=self._k(scale)).fit(a, c)
            self.chosen = {"length_scale": scale, "alpha": self.alpha}
        else:
            if self.cv_folds > samples:
                raise ValueError(f"KernelRegression: cv_folds={self.cv_folds} exceeds the {samples} training samples")
            grid = {"kernel": [self._k(scale * factor) for factor in (0.25, 0.5, 1.0, 2.0, 4.0)],
                    "alpha": [self.alpha * factor for factor in (1.0, 1e3, 1e6)]}
            search = GridSearchCV(KernelRidge(), grid, cv=KFold(self.cv_folds, shuffle=True, random_state=seed),
                                  scoring="neg_mean_squared_error").fit(a, c)
            self._regressor = search.best_estimator_
            self.chosen = {"length_scale": float(search.best_params_["kernel"].length_scale),
                           "alpha": float(search.best_params_["alpha"])}
        stored = [self._pca_in.components_, self._pca_in.mean_, self._pca_out.components_, self._pca_out.mean_,
                  self._regressor.dual_coef_, a]
        self.n_parameters = int(sum(np.size(x) for x in stored))
        self._shape = u.shape[1:]

    def _predict(self, kappa, f) -> np.ndarray:
        c = self._regressor.predict(self._pca_in.transform(self._inputs(kappa, f)))
        u = self._pca_out.inverse_transform(np.atleast_2d(c)) * self._u_scale
        return u.reshape(len(kappa), *self._shape)
