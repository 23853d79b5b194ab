"""The command line (`liaison`): the top layer beside api; it alone may import api and
adapters."""
