"""Bringing labels into a dataset: rename, merge into a landmarks table, the `LabelStore`
lookup, export, near-duplicates."""
