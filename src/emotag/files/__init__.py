"""Files and settings: CSV files, atomic writes, the run lock, discovery, images, the trust
boundary, settings and keys."""
