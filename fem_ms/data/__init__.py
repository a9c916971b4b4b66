"""Training datasets generated from the mesh hierarchy (HDF5; layout in :mod:`fem_ms.data.schema`,
documented in docs/datasets.md)."""

from .config import (
                     BurgersConfig,
                     CylinderFlowConfig,
                     DarcyNotchConfig,
                     GMsFEMBasisConfig,
                     MultilevelConfig,
                     load_config,
)
from .generate import generate
from .schema import FORMAT_VERSION, CorruptDatasetError, DatasetFile

__all__ = ["BurgersConfig", "CorruptDatasetError", "CylinderFlowConfig", "DarcyNotchConfig", "DatasetFile",
           "FORMAT_VERSION", "GMsFEMBasisConfig", "MultilevelConfig", "generate", "load_config"]
