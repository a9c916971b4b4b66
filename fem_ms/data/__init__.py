"""Training datasets generated from the mesh hierarchy (HDF5; schema in docs/datasets.md)."""

from .config import (BurgersConfig, CylinderFlowConfig, DarcyNotchConfig, GMsFEMBasisConfig, MultilevelConfig,
                     load_config)
from .generate import generate

__all__ = ["BurgersConfig", "CylinderFlowConfig", "DarcyNotchConfig", "GMsFEMBasisConfig", "MultilevelConfig", "generate",
           "load_config"]
