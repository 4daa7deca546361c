"""The data audit: duplicates and leaks across splits, likely label errors, outliers."""
