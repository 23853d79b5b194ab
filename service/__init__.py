"""The call lifecycle, storage, the writer, the board hub, the policy store, access and
figures: one package per domain (README, "How a call flows"); imports run downward only
(.importlinter)."""
