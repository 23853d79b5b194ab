"""Units as records (issue 14): the roster, duty, positions; docs/units.md."""
