"""cbp: compiled backpropagation for dense neural networks, with scikit-learn's API.

    from cbp import MLPClassifier, MLPRegressor

are drop-in replacements for ``sklearn.neural_network``'s estimators of the
same names, trained by a compiled Cython kernel.
"""

from ._multilayer_perceptron import MLPClassifier, MLPRegressor
from ._persistence import load
from ._plot import LossCurveDisplay
from ._preprocessing import PiecewiseLinearEncoder
from ._robust_scaling import RobustScaleSmoothClip
from ._table_encoder import TableEncoder
from ._tabular import TabularMLPClassifier, TabularMLPRegressor
from ._onnx import register_when_skl2onnx_is_imported as _onnx_hook

_onnx_hook()  # registers cbp's ONNX converters once skl2onnx is imported

__all__ = ["LossCurveDisplay", "MLPClassifier", "MLPRegressor", "PiecewiseLinearEncoder",
           "RobustScaleSmoothClip", "TableEncoder", "TabularMLPClassifier", "TabularMLPRegressor", "load"]
__version__ = "0.1.0"
