"""Runnable Beam pipelines: composition roots, options, sources and sinks."""
