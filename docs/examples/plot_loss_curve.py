"""
Loss and validation curves
==========================

``loss_curve_`` holds the training loss of every epoch and, with
``early_stopping=True``, ``validation_scores_`` the score on the held-out
part; given ``X_val``/``y_val``, cbp also records ``validation_loss_curve_``,
the loss on them without the L2 term. :class:`cbp.LossCurveDisplay` draws
them, and marks the epoch whose weights early stopping kept. This is the
figure of the user guide's :doc:`/user_guide/watching` page: digits, adam,
``early_stopping=True`` with ``n_iter_no_change=8``, on a 70/30 split.
"""

import warnings

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from cbp import LossCurveDisplay, MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_val, y_train, y_val = train_test_split(X / 16, y, test_size=0.3,
                                                  random_state=0, stratify=y)
model = MLPClassifier(hidden_layer_sizes=(64,), solver="adam", learning_rate_init=0.01,
                      early_stopping=True, n_iter_no_change=8, max_iter=200,
                      random_state=0)
with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # stopping on no improvement, as intended
    model.fit(X_train, y_train, X_val=X_val, y_val=y_val)
print(f"{model.n_iter_} epochs; early stopping kept epoch "
      f"{int(np.argmax(model.validation_scores_)) + 1}, validation accuracy "
      f"{max(model.validation_scores_):.3f}")

fig, ax = plt.subplots(figsize=(7, 4))
LossCurveDisplay.from_estimator(model, ax=ax, name="MLPClassifier on digits")
fig.tight_layout()
plt.show()
