"""Probabilistic operator surrogates: LoGoS-GPO (local–global doubly sparse Gaussian-process
operator with enhanced-WNO mean and kernel), the plain GPO and SVGP baselines (docs/gpo.md)."""

from .baselines import ExactGPO, SVGPOperator
from .calibration import CalibratedVariance, calibrate_variance
from .logos import LoGoSGPO, Prediction
from .problems import GridProblem, load_problem
from .spatial import KNNKernel, KroneckerKNNKernel, SparseSymmetricLinearOperator
from .train import MODELS, build_model, evaluate, load_gpo, relative_l2, train_gpo
from .wno import WNO, WaveletConv

__all__ = ["LoGoSGPO", "ExactGPO", "SVGPOperator", "Prediction", "CalibratedVariance", "calibrate_variance",
           "GridProblem", "load_problem", "KNNKernel", "KroneckerKNNKernel", "SparseSymmetricLinearOperator",
           "MODELS", "build_model", "evaluate", "load_gpo", "relative_l2", "train_gpo", "WNO", "WaveletConv"]
