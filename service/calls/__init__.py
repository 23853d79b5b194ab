"""What a call is: the inbound event, the typed row, folding events into a state, the
people it is about, repeat-contact reads, and who may see which of its fields."""
