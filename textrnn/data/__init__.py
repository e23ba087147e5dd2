"""Data on disk: where it comes from (sources), split files (splits), token ids (vectors)."""
