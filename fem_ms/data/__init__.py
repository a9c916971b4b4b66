"""Training datasets generated from the mesh hierarchy (HDF5; layout in :mod:`fem_ms.data.schema`,
documented in docs/datasets.md)."""

from .config import (
                     BurgersConfig,
                     CylinderFlowConfig,
                     DarcyNotchConfig,
                     GMsFEMBasisConfig,
                     MultilevelConfig,
                     NavierStokesForcingConfig,
                     NavierStokesTorusConfig,
                     ShallowWaterSphereConfig,
                     WaveAdvectionConfig,
                     load_config,
)
from .generate import generate
from .schema import FORMAT_VERSION, CorruptDatasetError, DatasetFile
from .the_well import export_the_well
from .xdmf import write_xdmf

__all__ = ["BurgersConfig", "CorruptDatasetError", "CylinderFlowConfig", "DarcyNotchConfig", "DatasetFile",
           "FORMAT_VERSION", "GMsFEMBasisConfig", "MultilevelConfig", "NavierStokesForcingConfig",
           "NavierStokesTorusConfig", "ShallowWaterSphereConfig", "WaveAdvectionConfig", "export_the_well", "generate",
           "load_config", "write_xdmf"]
