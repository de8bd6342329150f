"""Coverage-guided fuzz targets for every parser of untrusted input (see harness.py)."""
