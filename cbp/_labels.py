"""The classifier's targets: labels as the network's 0/1 outputs.

``LabelTargets`` is a mixin of MLPClassifier: it validates y, keeps the
LabelBinarizer and ``classes_``, encodes labels (with a fast path for 1-d
binary and multiclass labels), the validation labels, and class_weight's
sample weights.
"""

import numpy as np
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils import column_or_1d
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.multiclass import type_of_target, unique_labels



class LabelTargets:
    """MLPClassifier's handling of class labels."""

    def _validate_input(self, X, y, incremental, reset, ensure_all_finite=True):
        X, y = self._validate_X_y(X, y, reset, ensure_all_finite)

        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y)
            self.classes_ = self._label_binarizer.classes_
            index = self._label_index(y)
        else:
            index = self._label_index(y)
            if self.warm_start:
                seen_all = index is not None and np.bincount(
                    index, minlength=len(self.classes_)).all()
                if not seen_all and set(unique_labels(y)) != set(self.classes_):
                    raise ValueError(
                        "warm_start can only be used where `y` has the same "
                        "classes as in the previous call to fit. Previously "
                        f"got {self.classes_}, `y` has {unique_labels(y)}"
                    )
            elif index is None:
                classes = unique_labels(y)
                if len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
                    raise ValueError(
                        "`y` has classes not in `self.classes_`. "
                        f"`self.classes_` has {self.classes_}. 'y' has {classes}."
                    )

        # bool, so that X's dtype is not upcast (as in scikit-learn)
        if index is None:
            y = self._label_binarizer.transform(y).astype(bool)
        elif self._label_binarizer.y_type_ == "binary":
            y = (index == 1).reshape(-1, 1)
        else:
            y = np.zeros((index.shape[0], len(self.classes_)), dtype=bool)
            y[np.arange(index.shape[0]), index] = True
        return X, y

    def _training_targets(self, Y):
        """The 0/1 targets Y (n, n_outputs; floats or bytes) smoothed by
        label_smoothing, in floats of the weights' dtype: toward 1 /
        n_classes for multiclass targets (softmax), toward 1/2 for each
        output of binary and multilabel ones (logistic). Y itself for
        label_smoothing=0."""
        epsilon = self.label_smoothing
        if not epsilon:
            return Y
        share = 1.0 / Y.shape[1] if self._label_binarizer.y_type_ == "multiclass" else 0.5
        smoothed = np.asarray(Y, dtype=np.float64) * (1.0 - epsilon) + epsilon * share
        return np.ascontiguousarray(smoothed, dtype=self.coefs_[0].dtype)

    def _label_index(self, y):
        """Each label's position in classes_, or None.

        The fast path of LabelBinarizer.transform for what it sees most: 1-d
        binary or multiclass labels of classes_'s own kind, every one of them
        in classes_. Anything else (multilabel, mixed kinds, unseen labels,
        a single class) returns None, and scikit-learn's LabelBinarizer does
        the work and raises its errors.
        """
        classes = self.classes_
        if not (
            self._label_binarizer.y_type_ in ("binary", "multiclass")
            and len(classes) >= 2
            and y.ndim == 1
            and y.dtype.kind == classes.dtype.kind
            and y.dtype.kind in "biuU"
        ):
            return None
        index = np.searchsorted(classes, y)
        np.minimum(index, len(classes) - 1, out=index)
        if not np.array_equal(classes[index], y):
            return None
        return index

    def _encode_validation_targets(self, y_val):
        """y_val's labels as the network's 0/1 targets; every label must have
        been seen in training."""
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return self._label_binarizer.transform(y_val)
        y_val = column_or_1d(y_val, warn=True) if np.ndim(y_val) == 2 else y_val
        unseen = np.setdiff1d(unique_labels(y_val), self.classes_)
        if len(unseen):
            raise ValueError(
                f"y_val has labels not seen in training: {unseen.tolist()}; the "
                f"model's classes are {self.classes_.tolist()}."
            )
        return self._label_binarizer.transform(y_val)

    def _class_sample_weight(self, y, incremental):
        """compute_sample_weight(class_weight, y), or None without class_weight."""
        if self.class_weight is None:
            return None
        target_type = type_of_target(y)
        if target_type.startswith("multilabel") or target_type.endswith("multioutput"):
            raise ValueError(
                "class_weight is not supported for multilabel or multi-output "
                "targets; pass sample_weight instead."
            )
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                "class_weight='balanced' is not supported for partial_fit: the "
                "class frequencies of one call are not those of the data. Pass a "
                "dict of weights (e.g. computed once with "
                "sklearn.utils.class_weight.compute_class_weight)."
            )
        return compute_sample_weight(self.class_weight, column_or_1d(np.asarray(y)))
