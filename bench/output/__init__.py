"""What presents: the one writer layer (files), plots, the run and sweep reports."""
