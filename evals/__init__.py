"""Evals: recorded dialogs replayed through the real assistant service (see README "Evals")."""
