"""The absl entry points, one module per command; each parses flags and calls one library
function (`python -m tftransfer.<command>` runs the module of the same name here)."""
