"""How good the labels are: the audit, the calibration map and its statistics, agreement
metrics, eval, human corrections."""
