"""The one writer: commands committed in batches, the batch as a unit of work, the
NOTIFY listener that feeds other instances' hubs, and the write-health probe."""
