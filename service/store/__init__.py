"""The database: engine and migrations runner, the tables, waiting for a database that
does not answer, and stopping steps cleanly."""
