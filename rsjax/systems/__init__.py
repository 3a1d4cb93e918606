"""Systems: one paper recipe each, behind the System contract of base.py."""
