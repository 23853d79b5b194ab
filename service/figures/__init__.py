"""The program's figures (timeliness, who the team served, gaps)."""
