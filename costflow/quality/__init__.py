"""Data quality and FOCUS conformance: the slice gate, its HTML report, post-load assertions,
the FOCUS dataset export with metadata, and the official FOCUS validator's runner."""
