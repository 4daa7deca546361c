"""The SavedModel for TF Serving: its signatures, the versioned export, and predictions
through an export."""
