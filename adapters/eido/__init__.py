"""NENA EIDO (NENA-STA-021.1b): read an EIDO into a CallEvent, write a call as an EIDO.

parse.py holds the reader and the conformance policy, emit.py the writer, mapping.py the
city-editable mapping of incident and call types (apco_mapping.yaml), pidf.py the
PIDF-LO location reader and text.py the notes' HTML-to-text. See README.md beside them.
"""
