"""Scoring a trained model: inference, evaluation, metrics, plots and predict."""
