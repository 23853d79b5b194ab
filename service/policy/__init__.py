"""The routing policy in force, its stored versions, and what-if jobs."""
