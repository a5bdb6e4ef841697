"""The agent core: conversation service, Responses loop, offline policy, guardrails."""

__version__ = "0.1.0"
