"""Developer tools that run from a source checkout and are not part of the hookline wheel."""
