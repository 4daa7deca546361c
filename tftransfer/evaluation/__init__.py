"""Judging a trained model: classification metrics, the confusion matrix, and evaluation of a
run or an export on a validation split."""
