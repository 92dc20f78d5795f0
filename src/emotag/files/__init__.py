"""Files and settings: CSV files, atomic writes, the JSON kept beside them, the run lock,
discovery, images, the trust boundary, settings and keys."""
