"""
Loss and validation curves
==========================

``loss_curve_`` holds the training loss of every epoch and, with
``early_stopping=True``, ``validation_scores_`` the score on the held-out
part. Both are scikit-learn's attributes; :class:`cbp.LossCurveDisplay`
draws them.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits

from cbp import LossCurveDisplay, MLPClassifier

X, y = load_digits(return_X_y=True)
model = MLPClassifier(hidden_layer_sizes=(64,), early_stopping=True, max_iter=200,
                      random_state=0).fit(X / 16, y)
print(f"{model.n_iter_} epochs, best validation accuracy "
      f"{max(model.validation_scores_):.3f}")

LossCurveDisplay.from_estimator(model)
plt.show()
