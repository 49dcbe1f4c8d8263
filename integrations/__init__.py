"""Adapters that connect agent frameworks to gmem (``integrations.langgraph`` first)."""
