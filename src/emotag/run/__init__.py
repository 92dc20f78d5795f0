"""`emotag tag`: options, the live engine and its workers, batch mode, the dry run, and the
rules they share (planner, outcome, recorder, resume, cascade, prices, pacing)."""
