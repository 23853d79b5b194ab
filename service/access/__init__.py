"""Who may do what: users, sessions, API keys and roles, rate limits, and the
credentials a command-line client sends."""
