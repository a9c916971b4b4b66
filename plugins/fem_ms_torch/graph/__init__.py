"""Graph networks on the unstructured meshes (MP-PDE) and field transfer between meshes."""

from .mppde import MPPDE, MPPDELayer
from .transfer import p1_interpolation

__all__ = ["MPPDE", "MPPDELayer", "p1_interpolation"]
