"""Export cbp's estimators to ONNX with skl2onnx (the ``onnx`` extra:
``pip install ".[onnx]"`` from the repository root).

Importing this module imports skl2onnx and registers cbp's converters, so
that skl2onnx's own functions convert cbp.MLPClassifier, cbp.MLPRegressor,
the tabular estimators and cbp.TableEncoder::

    import cbp.onnx  # optional once skl2onnx is imported: cbp registers then
    from skl2onnx import to_onnx

    onx = to_onnx(model, X[:1])              # float32 graph for float32 X
    onx = to_onnx(model, X[:1].astype("float64"))  # double graph

    onx = cbp.onnx.to_onnx(tabular_model)    # one input per column
    onx = to_onnx(tabular_model, X[:1])      # the input types of X's dtypes

Outputs follow skl2onnx's conventions for scikit-learn's MLP: a classifier
gives ``label`` (predict) and ``probabilities`` (predict_proba; a list of
dicts unless ``options={"zipmap": False}``), a regressor ``variable`` of
shape (n_samples, n_outputs_), also (n_samples, 1) for one output.

A tabular model's graph (TabularMLPClassifier, TabularMLPRegressor) or a
TableEncoder's takes the table's columns as named (N, 1) inputs, in column
order (skl2onnx makes the names C identifiers: 'sample.yr' becomes
'sample_yr'): numeric columns double (float, int64 and bool accepted), NaN
where missing; categorical ones strings (int64 and bool accepted),
'<missing>' where missing. Without a sample table, ``cbp.onnx.to_onnx``
declares them double and string. It encodes them as the model's encoder
does, in double, then runs the network in float32: a classifier's
probabilities are float32, a regressor's values double (the float32
network's, on the targets' scale), a TableEncoder's columns float32.
"""

from ._onnx import (
    CLASSIFIER_ALIAS,
    REGRESSOR_ALIAS,
    TABULAR_ALIASES,
    calculate_classifier_output_shapes,
    calculate_regressor_output_shapes,
    calculate_tabular_output_shapes,
    convert_classifier,
    convert_regressor,
    convert_tabular,
    register,
    to_onnx,
)

__all__ = [
    "CLASSIFIER_ALIAS",
    "REGRESSOR_ALIAS",
    "TABULAR_ALIASES",
    "calculate_classifier_output_shapes",
    "calculate_regressor_output_shapes",
    "calculate_tabular_output_shapes",
    "convert_classifier",
    "convert_regressor",
    "convert_tabular",
    "register",
    "to_onnx",
]

register()
