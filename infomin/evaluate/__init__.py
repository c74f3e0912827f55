"""infomin.evaluate: score frozen representations.

* :mod:`.probes`: linear probe (scikit-learn or full-batch torch) and weighted kNN;
* :mod:`.metrics`: alignment, uniformity (Wang & Isola 2020) and tolerance (Wang & Liu 2021);
* :mod:`.plots`: loss / I_NCE curves and a t-SNE feature map.
"""

from infomin.evaluate.probes import extract_features, knn_accuracy, linear_probe, standardise

__all__ = ["extract_features", "knn_accuracy", "linear_probe", "standardise",
           "alignment", "uniformity", "tolerance", "plot_curves", "plot_feature_map"]


def __getattr__(name):  # lazy: plots pulls in matplotlib
    if name in ("alignment", "uniformity", "tolerance"):
        from infomin.evaluate import metrics

        return getattr(metrics, name)
    if name in ("plot_curves", "plot_feature_map"):
        from infomin.evaluate import plots

        return getattr(plots, name)
    raise AttributeError(name)
