"""The DVC project's own commands: experiments and seeds, presets, the report and the results table."""
