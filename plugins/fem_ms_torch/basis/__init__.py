"""GMsFEM-NO: neural operators that predict the local multiscale subspaces."""

from .losses import rbfl2_loss, sal_loss, sal_pr_loss

__all__ = ["rbfl2_loss", "sal_loss", "sal_pr_loss"]
