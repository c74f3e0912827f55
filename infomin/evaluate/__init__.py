"""infomin.evaluate: score frozen representations.

* :mod:`.probes`: linear probe (scikit-learn or full-batch torch) and weighted kNN;
* :mod:`.metrics`: alignment, uniformity (Wang & Isola 2020) and tolerance (Wang & Liu 2021);
* :mod:`.scoring`: the whole evaluation of a two-view model (features through a view
  generator's evaluation inputs, probes per factor, geometry);
* :mod:`.plots`: loss / I_NCE curves and a t-SNE feature map (matplotlib, imported on use).
"""

from infomin.evaluate.metrics import alignment, tolerance, uniformity
from infomin.evaluate.probes import extract_features, knn_accuracy, linear_probe, standardise
from infomin.evaluate.scoring import encode_fn, features, geometry, probe_accuracies

__all__ = ["alignment", "encode_fn", "extract_features", "features", "geometry", "knn_accuracy",
           "linear_probe", "probe_accuracies", "standardise", "tolerance", "uniformity"]
