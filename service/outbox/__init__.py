"""Decisions back to the CAD: outbox rows written with each decision, their signing,
and delivery state (the HTTP worker is adapters/outbound.py)."""
