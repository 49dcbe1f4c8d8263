"""Example LangGraph teams wired to gmem, used by the docs, the demo and the tests."""
