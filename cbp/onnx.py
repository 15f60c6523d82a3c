"""Export cbp's estimators to ONNX with skl2onnx (``pip install cbp[onnx]``).

Importing this module imports skl2onnx and registers cbp's converters, so
that skl2onnx's own functions convert cbp.MLPClassifier and cbp.MLPRegressor::

    import cbp.onnx  # optional once skl2onnx is imported: cbp registers then
    from skl2onnx import to_onnx

    onx = to_onnx(model, X[:1])              # float32 graph for float32 X
    onx = to_onnx(model, X[:1].astype("float64"))  # double graph

Outputs follow skl2onnx's conventions for scikit-learn's MLP: a classifier
gives ``label`` (predict) and ``probabilities`` (predict_proba; a list of
dicts unless ``options={"zipmap": False}``), a regressor ``variable`` of
shape (n_samples, n_outputs_), also (n_samples, 1) for one output.
"""

from ._onnx import (
    CLASSIFIER_ALIAS,
    REGRESSOR_ALIAS,
    calculate_classifier_output_shapes,
    calculate_regressor_output_shapes,
    convert_classifier,
    convert_regressor,
    register,
    to_onnx,
)

__all__ = [
    "CLASSIFIER_ALIAS",
    "REGRESSOR_ALIAS",
    "calculate_classifier_output_shapes",
    "calculate_regressor_output_shapes",
    "convert_classifier",
    "convert_regressor",
    "register",
    "to_onnx",
]

register()
