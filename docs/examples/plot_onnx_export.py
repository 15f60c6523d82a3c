"""
Export to ONNX
==============

Once ``skl2onnx`` is imported, cbp's converters are registered with it, and
skl2onnx's ``to_onnx`` turns a fitted :class:`cbp.MLPClassifier` into an
ONNX graph that ``onnxruntime`` runs without cbp or scikit-learn. Here a
network fitted on the digits in float32 is exported and onnxruntime's
probabilities are compared with cbp's.
"""

import matplotlib.pyplot as plt
import numpy as np
import onnxruntime as ort
from skl2onnx import to_onnx
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from cbp import MLPClassifier

X, y = load_digits(return_X_y=True)
X = (X / 16).astype(np.float32)
X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)

model = MLPClassifier(hidden_layer_sizes=(64,), max_iter=1000, random_state=0)
model.fit(X_train, y_train)
print(f"cbp test accuracy {model.score(X_test, y_test):.4f}")

# %%
# Convert and run
# ---------------
#
# A float32 sample row gives a float32 graph (a float64 one, a double
# precision graph). ``zipmap=False`` makes the probabilities a plain array
# rather than a list of dictionaries.

onx = to_onnx(model, X_train[:1], options={"zipmap": False})
session = ort.InferenceSession(onx.SerializeToString(),
                               providers=["CPUExecutionProvider"])
print("inputs:", [i.name for i in session.get_inputs()],
      "outputs:", [o.name for o in session.get_outputs()])
labels, proba = session.run(None, {"X": X_test})

expected = model.predict_proba(X_test)
print(f"max |onnxruntime - cbp| probability: {np.max(np.abs(proba - expected)):.2e}")
print(f"same labels: {np.array_equal(labels, model.predict(X_test))}")

# %%
# The two sets of probabilities, one point per test row and class.

fig, ax = plt.subplots(figsize=(4.5, 4.5))
ax.scatter(expected.ravel(), proba.ravel(), s=6, alpha=0.5)
ax.plot([0, 1], [0, 1], color="grey", lw=0.8)
ax.set_xlabel("cbp predict_proba")
ax.set_ylabel("onnxruntime probabilities")
ax.set_title("the ONNX graph reproduces the model")
fig.tight_layout()
