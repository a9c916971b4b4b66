"""Probabilistic operator surrogates: LoGoS-GPO (local–global doubly sparse Gaussian-process
operator with enhanced-WNO mean and kernel), the plain GPO and SVGP baselines (docs/gpo.md)."""

from .baselines import ExactGPO, SVGPOperator
from .calibration import CalibratedVariance, calibrate_variance
from .config import MODELS, TrainGPOConfig
from .logos import LoGoSGPO, Prediction
from .problems import GridProblem, load_problem
from .spatial import KNNKernel, KroneckerKNNKernel, SparseSymmetricLinearOperator
from .train import build_model, evaluate, load_gpo, relative_l2, train_gpo, train_gpo_from_config
from .wno import WNO, WaveletConv

__all__ = ["LoGoSGPO", "ExactGPO", "SVGPOperator", "Prediction", "CalibratedVariance", "calibrate_variance",
           "GridProblem", "load_problem", "KNNKernel", "KroneckerKNNKernel", "SparseSymmetricLinearOperator",
           "MODELS", "TrainGPOConfig", "build_model", "evaluate", "load_gpo", "relative_l2", "train_gpo",
           "train_gpo_from_config", "WNO", "WaveletConv"]
