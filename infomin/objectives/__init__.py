"""Contrastive objectives as pure functions (InfoNCE / NT-Xent) and the I_NCE bound."""

from infomin.objectives.infonce import (
    FORMS,
    default_form,
    info_nce,
    mi_lower_bound,
    near_ceiling,
    num_candidates,
)

__all__ = ["FORMS", "default_form", "info_nce", "mi_lower_bound", "near_ceiling", "num_candidates"]
