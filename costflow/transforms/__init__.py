"""Per-provider normalizers over Arrow batches and the shared steps that finish them."""
