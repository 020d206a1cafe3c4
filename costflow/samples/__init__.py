"""Deterministic generators of realistic billing exports, for the demo, tests and benchmark."""
