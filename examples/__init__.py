"""Example applications that embed Hookline (not part of the hookline wheel)."""
